"""Makes any Strategy a Ray Tune `Searcher`: suggest -> ask, complete -> tell.

Ray's ConcurrencyLimiter (from `max_concurrent_trials`) caps how many suggestions are live; the
strategy itself never blocks, so trials really run side by side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher

from orchestrator.searchers.base import Strategy, write_json_atomic


class StrategySearcher(Searcher):
    """A Ray Tune Searcher driven by a nasorch Strategy.

    `base_config` is merged into every suggested config (trainable options, space spec), and each
    trial gets a sequential `trial_number` and a seed derived from it, so a rerun with the same
    seed trains the same trial the same way. `admit(arch)` may veto a suggestion before it takes a
    trial slot: it returns None to run it, or a value to tell the strategy at once (a reused
    duplicate, a violated constraint).
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        metric: str,
        mode: str,
        base_config: dict[str, Any],
        seed: int = 0,
        admit: Callable[[dict], tuple[bool, float | None]] | None = None,
        max_skips: int = 1000,
    ):
        super().__init__(metric=metric, mode=mode)
        self.strategy = strategy
        self.base_config = base_config
        self.seed = seed
        self.admit = admit
        self.max_skips = max_skips
        self.live: dict[str, dict] = {}
        self.numbers: dict[str, int] = {}
        self.next_number = 1

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode come from the experiment config, set in __init__

    def suggest(self, trial_id: str) -> dict | None:
        for _ in range(self.max_skips):
            arch = self.strategy.ask()
            if arch is None:
                return Searcher.FINISHED
            if self.admit is not None:
                run_it, value = self.admit(arch)
                if not run_it:
                    self.strategy.tell(arch, value)
                    continue
            break
        else:
            return Searcher.FINISHED
        number = self.next_number
        self.next_number += 1
        self.live[trial_id] = arch
        self.numbers[trial_id] = number
        return {
            **self.base_config,
            "arch": arch,
            "arch_key": self.strategy.space.key(arch),
            "trial_number": number,
            "seed": (self.seed * 1_000_003 + number) % 2**31,
        }

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        arch = self.live.pop(trial_id, None)
        if arch is None:
            return
        value = None
        if result and not error and isinstance(result.get(self.metric), (int, float)):
            value = float(result[self.metric])
        self.strategy.tell(arch, value)

    # Ray calls save/restore with its experiment checkpoints; ours are JSON, written atomically.
    def get_state(self) -> dict:
        return {
            "strategy": self.strategy.state(),
            "live": self.live,
            "numbers": self.numbers,
            "next_number": self.next_number,
        }

    def set_state(self, state: dict) -> None:
        self.strategy.load_state(state["strategy"])
        self.live = state["live"]
        self.numbers = state["numbers"]
        self.next_number = state["next_number"]

    def save(self, checkpoint_path: str) -> None:
        write_json_atomic(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))
