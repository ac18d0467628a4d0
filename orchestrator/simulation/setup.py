"""Builds one simulated search from names, with the registries a real search uses.

`simulate(source, "tpe", "asha", workers=32, seed=3)` takes its searcher from `STRATEGIES` and
its scheduler from `SCHEDULERS`, drives the searcher through `StrategySearcher` and the gate
(duplicates answered without training, as in a real search), and returns a `SimResult`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from orchestrator.core.errors import UserError
from orchestrator.core.gate import Gate
from orchestrator.execution.components import make_strategy
from orchestrator.schedulers import SCHEDULERS
from orchestrator.searchers.tune_adapter import StrategySearcher
from orchestrator.simulation.engine import SimResult, Simulation
from orchestrator.warm_start.plan import WarmStart, seed_turn
from trainables.curves import CurveError, CurveSource, TableCurves, data_path

# The combinations the simulator compares (searcher+scheduler); `ours` marks our own. An entry
# may name its scheduler and options when the name alone is not a registry pair.
COMBOS: dict[str, dict[str, Any]] = {
    "random+fifo": {},
    "random+asha": {},
    "random+hyperband": {},
    # Hyperband through ASHA: asynchronous brackets of grace 1, 3 and 9 epochs (Li et al. 2020)
    "random+async_hyperband": {"scheduler": "asha", "scheduler_options": {"brackets": 3}},
    "random+one_epoch": {},  # Egele et al. 2023: one epoch each, the best 3 so far to the end
    "tpe+asha": {},  # BOHB-style: a model-based searcher with successive halving
    "guided+asha": {},
    "random+curve": {},
    "rungs+asha": {"ours": True},
    "fidelity+fidelity": {"ours": True},  # EI over (config, epoch) for new trials and promotions
    "fidelity+asha": {"ours": True},  # the same searcher; ASHA promotes every survivor at once
}


def combo_parts(combo: str) -> tuple[str, str, dict[str, Any]]:
    """(searcher, scheduler, scheduler options) of a combination: a COMBOS entry's own, else
    the names either side of the `+`."""
    searcher, _, scheduler = combo.partition("+")
    entry = COMBOS.get(combo, {})
    return searcher, entry.get("scheduler", scheduler), dict(entry.get("scheduler_options", {}))


# Ray's PBT and PB2 pause a trial, save its checkpoint and restart it with another trial's
# weights and a perturbed config: hooks of Ray's TuneController that the simulated one lacks.
SIMULATED_SCHEDULERS = tuple(name for name in SCHEDULERS if name not in ("pbt", "pb2"))
SCHEDULER_DEFAULTS: dict[str, dict[str, Any]] = {
    "asha": {"grace_period": 1, "reduction_factor": 3},
    "hyperband": {"reduction_factor": 3},
    "curve": {"grace_period": 3},
    "median": {"grace_period": 1},
}


def build_source(spec: str) -> CurveSource:
    """`nb201` (the shared NB201 curves), `lcbench:TASK`, `mlflow:EXPERIMENT[@URI]` (a past
    search's curves, orchestrator/simulation/mlflow_source.py), or a path to a curves CSV
    (optionally `PATH:SPACE` when its `arch` column holds a space's keys)."""
    try:
        if spec.startswith("mlflow:"):
            from orchestrator.simulation.mlflow_source import mlflow_curves

            return mlflow_curves(spec)
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
    plan: WarmStart | None = None,
    objectives: tuple[str, ...] = (),
    keep_trials: bool = False,
) -> SimResult:
    """`seeds`: architectures suggested before the searcher is asked (a warm start's related
    task's best, as `orchestrator/warm_start` puts them in the adapter); `plan`: a whole warm
    start (the strategy primed, the gate answering from the record, the seeds), applied as a
    real search applies it; `objectives`: further metrics the source reports (minimised), told
    to the strategy after the source's metric; `keep_trials`: fill `SimResult.ended` with every
    trial's last result, in the order the trials were suggested."""
    if scheduler not in SIMULATED_SCHEDULERS:
        raise UserError(
            f"scheduler: {scheduler!r} cannot be simulated; allowed: "
            f"{', '.join(SIMULATED_SCHEDULERS)}"
        )
    modes = [source.mode, *("min" for _ in objectives)]
    strategy = make_strategy(
        searcher, source.space, mode=source.mode, seed=seed, options=searcher_options, modes=modes
    )
    options = {**SCHEDULER_DEFAULTS.get(scheduler, {}), **(scheduler_options or {})}
    sched = SCHEDULERS[scheduler](source.max_epochs, **options)
    if options.get("brackets", 1) > 1:
        # Ray's ASHA draws each trial's bracket from numpy's global generator: seeded here, so
        # the same seed gives the same run, as every other combination does.
        np.random.seed(seed)
    sched.set_search_properties(source.metric, source.mode)
    if hasattr(sched, "consult"):  # the `fidelity` scheduler decides with the searcher's model
        sched.consult(strategy)
    adapter = StrategySearcher(
        strategy, metric=source.metric, mode=source.mode, base_config={},
        gate=Gate(source.space), seed=seed, objectives=list(objectives),
    )  # fmt: skip
    adapter.seeds = list(seeds or [])
    adapter.seed_turn = seed_turn  # as a real warm start takes them
    if plan is not None:
        plan.apply(adapter)
    sim = Simulation(
        source, adapter, sched, workers=workers, max_time=max_time, max_trials=max_trials,
        cost_marks=cost_marks,
    )  # fmt: skip
    adapter.on_reuse = lambda number, config, past: sim.note_answer(float(past["value"]))
    result = sim.run()
    result.gate = adapter.gate.summary()
    if keep_trials:
        result.ended = [
            (t.config["arch"], float(t.last_result[source.metric]), t.epoch,
             t.epoch >= source.max_epochs)
            for t in sim.trials.values() if t.last_result
        ]  # fmt: skip
    return result


def by_evaluations(result: SimResult, budget: int) -> list[float]:
    """Best so far after each of `budget` evaluations of a one-epoch source (a table) on one
    worker: epochs spent are evaluations. A searcher that stopped early keeps its best to the
    end; answers from a warm start's record count from the evaluation they came before."""
    curve: list[float] = []
    marks = iter(result.trajectory)
    mark = next(marks, None)
    best: float | None = None
    for n in range(1, min(result.epochs, budget) + 1):
        while mark is not None and mark[1] <= n:
            best, mark = mark[2], next(marks, None)
        curve.append(best)
    return curve + [curve[-1]] * (budget - len(curve)) if curve else []


def in_processes(fn: Any, tasks: list[tuple], processes: int | None) -> Iterator[tuple[int, Any]]:
    """(index, fn(*task)) for every task, as each finishes, in `processes` processes (default:
    the CPU cores; fork where there is one: workers start with the tables already imported)."""
    n = max(1, min(processes or os.cpu_count() or 1, len(tasks)))
    if n == 1:
        yield from ((i, fn(*t)) for i, t in enumerate(tasks))
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(n) as pool:
        yield from pool.imap_unordered(_indexed, [(fn, i, t) for i, t in enumerate(tasks)])


def _indexed(job: tuple[Any, int, tuple]) -> tuple[int, Any]:
    fn, i, task = job
    return i, fn(*task)


def in_order(fn: Any, tasks: list[tuple], processes: int | None) -> list[Any]:
    """`in_processes`, the results in the tasks' order."""
    done = dict(in_processes(fn, tasks, processes))
    return [done[i] for i in range(len(tasks))]
