"""Builds one simulated search from names, with the registries a real search uses.

`simulate(source, "tpe", "asha", workers=32, seed=3)` takes its searcher from `STRATEGIES` and
its scheduler from `SCHEDULERS`, drives the searcher through `StrategySearcher` and the gate
(duplicates answered without training, as in a real search), and returns a `SimResult`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.core.gate import Gate
from orchestrator.errors import UserError
from orchestrator.schedulers import SCHEDULERS
from orchestrator.searchers import STRATEGIES
from orchestrator.searchers.tune_adapter import StrategySearcher
from orchestrator.simulation.engine import SimResult, Simulation
from orchestrator.warm_start.plan import seed_turn
from trainables.curves import CurveError, CurveSource, TableCurves, data_path

# The combinations the simulator compares (searcher+scheduler); `ours` marks our own.
COMBOS = {
    "random+fifo": {},
    "random+asha": {},
    "random+hyperband": {},
    "tpe+asha": {},  # BOHB-style: a model-based searcher with successive halving
    "guided+asha": {},
    "random+curve": {},
    "rungs+asha": {"ours": True},
}
SCHEDULER_DEFAULTS: dict[str, dict[str, Any]] = {
    "asha": {"grace_period": 1, "reduction_factor": 3},
    "hyperband": {"reduction_factor": 3},
    "curve": {"grace_period": 3},
    "median": {"grace_period": 1},
}


def build_source(spec: str) -> CurveSource:
    """`nb201` (the shared NB201 curves), `lcbench:TASK`, or a path to a curves CSV
    (optionally `PATH:SPACE` when its `arch` column holds a space's keys)."""
    try:
        if spec == "nb201":
            return TableCurves.load(data_path("nb201_cifar10_curves.csv"), space="nb201")
        if spec.startswith("lcbench:"):
            from trainables.lcbench import LCBenchCurves

            return LCBenchCurves(spec.split(":", 1)[1])
        path, _, space = spec.partition(":") if spec.count(":") == 1 else (spec, "", "")
        return TableCurves.load(path, space=space or None)
    except CurveError as e:
        raise UserError(f"--source: {e}") from None


def simulate(
    source: CurveSource,
    searcher: str,
    scheduler: str,
    *,
    workers: int,
    seed: int = 0,
    max_time: float = float("inf"),
    max_trials: int | None = None,
    searcher_options: dict[str, Any] | None = None,
    scheduler_options: dict[str, Any] | None = None,
    cost_marks: tuple[int, ...] = (),
    seeds: list[dict] | None = None,
    keep_trials: bool = False,
) -> SimResult:
    """`seeds`: architectures suggested before the searcher is asked (a warm start's related
    task's best, as `orchestrator/warm_start` puts them in the adapter); `keep_trials`: fill
    `SimResult.ended` with every trial's last result."""
    if searcher not in STRATEGIES:
        raise UserError(f"searcher: unknown {searcher!r}; allowed: {', '.join(STRATEGIES)}")
    if scheduler not in SCHEDULERS:
        raise UserError(f"scheduler: unknown {scheduler!r}; allowed: {', '.join(SCHEDULERS)}")
    strategy = STRATEGIES[searcher](
        source.space, mode=source.mode, seed=seed, **(searcher_options or {})
    )
    options = {**SCHEDULER_DEFAULTS.get(scheduler, {}), **(scheduler_options or {})}
    sched = SCHEDULERS[scheduler](source.max_epochs, **options)
    sched.set_search_properties(source.metric, source.mode)
    adapter = StrategySearcher(
        strategy,
        metric=source.metric,
        mode=source.mode,
        base_config={},
        gate=Gate(source.space),
        seed=seed,
    )
    adapter.seeds = list(seeds or [])
    adapter.seed_turn = seed_turn  # as a real warm start takes them
    sim = Simulation(
        source, adapter, sched, workers=workers, max_time=max_time, max_trials=max_trials,
        cost_marks=cost_marks,
    )  # fmt: skip
    result = sim.run()
    if keep_trials:
        result.ended = [
            (t.config["arch"], float(t.last_result[source.metric]), t.epoch,
             t.epoch >= source.max_epochs)
            for t in sim.trials.values() if t.last_result
        ]  # fmt: skip
    return result
