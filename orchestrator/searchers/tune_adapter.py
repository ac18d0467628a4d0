"""Makes any Strategy a Ray Tune `Searcher`: suggest -> ask, complete -> tell.

Ray's ConcurrencyLimiter (from `max_concurrent_trials`) caps how many suggestions are live; the
strategy itself never blocks, so trials really run side by side.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher

from orchestrator.core.gate import Gate
from orchestrator.core.jsonio import write_json_atomic
from orchestrator.resumable import restored, versioned
from orchestrator.searchers.base import Strategy


class StrategySearcher(Searcher):
    """A Ray Tune Searcher driven by a nasorch Strategy.

    `base_config` is merged into every suggested config (trainable options, space spec), and each
    trial gets a sequential `trial_number` and a seed derived from it, so a rerun with the same
    seed trains the same trial the same way. The `gate` costs each suggestion and may answer it
    without training (a violated constraint, an architecture already evaluated); the strategy is
    told at once and asked again. `objectives` are further metrics (or costs) told to
    multi-objective strategies after `metric`. A warm start (orchestrator/warm_start) puts a
    related task's best architectures in `seeds`, suggested before the strategy is asked, and
    earlier results in the gate's record; `on_reuse(number, config, source)` hears of each
    proposal answered from that record (the tracker records it as a trial run).
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        metric: str,
        mode: str,
        base_config: dict[str, Any],
        gate: Gate,
        seed: int = 0,
        objectives: list[str] | None = None,
        max_skips: int = 1000,
        max_consecutive_failures: int | None = None,
    ):
        super().__init__(metric=metric, mode=mode)
        self.strategy = strategy
        self.base_config = base_config
        self.gate = gate
        self.seed = seed
        self.objectives = objectives or []
        self.max_skips = max_skips
        self.live: dict[str, dict] = {}  # trial id -> {"arch", "cost"}
        self.next_number = 1
        self.exhausted = False  # True when the gate refused max_skips suggestions in a row
        self.max_consecutive_failures = max_consecutive_failures
        self.failures_in_a_row = 0
        self.seeds: list[dict] = []
        # Which suggestions take a seed (warm_start.plan.seed_turn; None: all of them first).
        self.seed_turn: Callable[[int], bool] | None = None
        self.on_reuse: Callable[[int, dict, dict], None] | None = None

    # The pickled form's version, and how an older one is upgraded (resumable/versioned.py).
    STATE_VERSION = 1
    STATE_UPGRADES = {1: versioned.defaults(seeds=list, seed_turn=lambda: None)}  # warm start

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k != "on_reuse"}
        return versioned.stamped(self, state)

    def __setstate__(self, state: dict) -> None:
        """Ray unpickles the searcher of a restored search: `nasorch resume` finds it here."""
        self.__dict__.update(versioned.upgraded(self, state))
        self.on_reuse = None  # the runner connects the restored tracker again
        restored.register("searcher", self)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode come from the experiment config, set in __init__

    @property
    def failed_out(self) -> bool:
        """Too many trials in a row ended in error: the search asks for no more."""
        limit = self.max_consecutive_failures
        return limit is not None and self.failures_in_a_row >= limit

    def suggest(self, trial_id: str) -> dict | None:
        if self.failed_out or self.gate.exhausted:
            return Searcher.FINISHED
        for _ in range(self.max_skips):
            turn = self.seed_turn
            seed = self.seeds and (turn is None or turn(self.next_number - 1))
            arch = self.seeds.pop(0) if seed else self.strategy.ask()
            if arch is None:
                return Searcher.FINISHED
            verdict = self.gate.check(arch)
            if verdict.run:
                break
            if verdict.reason == "reused" and verdict.source is not None:
                self._reused(arch, verdict.source)
            if verdict.reason != "duplicate in flight":  # that one is told when its twin ends
                self.strategy.tell(arch, verdict.value)
        else:
            self.exhausted = True
            return Searcher.FINISHED
        number = self.next_number
        self.next_number += 1
        self.live[trial_id] = {"arch": arch, "cost": verdict.cost}
        return {
            **self.base_config,
            "arch": arch,
            "arch_key": self.strategy.space.key(arch),
            "cost": verdict.cost,
            "trial_number": number,
            "seed": (self.seed * 1_000_003 + number) % 2**31,
        }

    def _reused(self, arch: dict, source: dict) -> None:
        """A proposal answered from an earlier search's record: a trial number of its own and a
        run in MLflow (marked reused, linked to its source), but no training."""
        number = self.next_number
        self.next_number += 1
        config = {**self.base_config, "arch": arch, "arch_key": self.strategy.space.key(arch)}
        if self.on_reuse is not None:
            self.on_reuse(number, config, source)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Remembers the last result the suggested architecture reached with its own weights:
        after a PBT exploit the trial trains the donor's architecture and checkpoint instead."""
        entry = self.live.get(trial_id)
        arch = (result.get("config") or {}).get("arch", entry["arch"]) if entry else None
        if entry is not None and arch == entry["arch"]:
            names = [self.metric, *self.objectives]
            # Plain floats: the state is JSON, and a trainable may report numpy scalars.
            entry["own"] = {
                k: float(result[k])
                for k in names
                if isinstance(result.get(k), numbers.Real) and not isinstance(result[k], bool)
            }
            self._observe(entry, result)

    def _observe(self, entry: dict, result: dict) -> None:
        """Every epoch's result of the suggested architecture, for searchers that learn from
        partial evaluations (`Strategy.observe`)."""
        epoch, value = result.get("training_iteration"), entry.get("own", {}).get(self.metric)
        if isinstance(epoch, int) and value is not None and epoch > entry.get("epoch", 0):
            entry["epoch"] = epoch
            self.strategy.observe(entry["arch"], epoch, value)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if result and not error and trial_id in self.live:
            self.on_trial_result(trial_id, result)  # Tune gives a stopped trial's last only here
        entry = self.live.pop(trial_id, None)
        if entry is None:
            return
        self.failures_in_a_row = self.failures_in_a_row + 1 if error else 0
        if result and (result.get("config") or {}).get("arch", entry["arch"]) != entry["arch"]:
            result = entry.get("own")  # exploited: the searcher learns what its own arch reached
        value = None if error or not result else self._value(result, entry["cost"])
        for arch in [entry["arch"], *self.gate.done(entry["arch"], value)]:
            self.strategy.tell(arch, value)

    def _value(self, result: dict, cost: dict) -> float | list[float] | None:
        values = []
        for name in [self.metric, *self.objectives]:
            v = result.get(name, cost.get(name))
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return None
            values.append(float(v))
        return values[0] if not self.objectives else values

    # Ray calls save/restore with its experiment checkpoints; ours are JSON, written atomically.
    def get_state(self) -> dict:
        return {
            "strategy": self.strategy.state(),
            "gate": self.gate.state(),
            "live": self.live,
            "next_number": self.next_number,
            "failures_in_a_row": self.failures_in_a_row,
            "seeds": self.seeds,
        }

    def set_state(self, state: dict) -> None:
        self.strategy.load_state(state["strategy"])
        self.gate.load_state(state["gate"])
        self.live = state["live"]
        self.next_number = state["next_number"]
        self.failures_in_a_row = state.get("failures_in_a_row", 0)
        self.seeds = list(state.get("seeds", []))

    def save(self, checkpoint_path: str) -> None:
        write_json_atomic(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))
