"""`nasorch simulate`: every combination x source x worker count x seed, in parallel processes,
or with `--address` as Ray tasks on a cluster (distributed.py; the same results either way).

Budgets are simulated wall-clock time in units of the source's median full-trial time T: a run
lasts `budget` x T, and regret is read at three budgets, early (budget/10), middle (budget *
3/10) and late (budget). Output files in DIR (schemas in docs/benchmarks/simulated.md):

- runs.csv: one row per run (source, combo, searcher, scheduler, workers, seed, trials, epochs,
  end_time_s, cpu_searcher_s, cpu_scheduler_s, cpu_bookkeeping_s, cpu_ms_per_trial,
  regret_early, regret_middle, regret_late, cpu_s: the run's whole process CPU time, its
  source's first load in that process included; their sum is the CPU-hours printed at the end);
- trajectory.csv: best so far at each improvement (source, combo, workers, seed, time_s, epochs,
  best, regret);
- rungs.csv: trials stopped and completed at each epoch (source, combo, workers, seed, epoch,
  stopped, completed);
- summary.csv: mean normalised regret (and its standard error) and average rank over seeds, per
  source, workers, combo and budget;
- regret_<source>_w<workers>.png: mean normalised regret against simulated time.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.core.errors import UserError
from orchestrator.simulation.setup import (
    COMBOS,
    build_source,
    combo_parts,
    in_processes,
    simulate,
)

BUDGETS = (("early", 0.1), ("middle", 0.3), ("late", 1.0))  # fractions of --budget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", action="append", default=None,
        help="nb201 (default), lcbench:TASK, mlflow:EXPERIMENT[@TRACKING_URI] (a past search's "
        "curves; default URI: MLFLOW_TRACKING_URI or ./nasorch_results/mlflow.db), or a curves "
        "CSV (PATH or PATH:SPACE); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--combos", default=",".join(COMBOS),
        help=f"searcher+scheduler pairs, comma-separated (default: {','.join(COMBOS)})",
    )  # fmt: skip
    parser.add_argument("--workers", default="4", help="simulated workers, e.g. 4,32,256")
    parser.add_argument("--seeds", type=int, default=5, help="runs per combination (default 5)")
    parser.add_argument(
        "--first-seed", type=int, default=0,
        help="seeds FIRST .. FIRST+SEEDS-1 (default 0): a grid split over runs, then merged",
    )  # fmt: skip
    parser.add_argument(
        "--budget", type=float, default=10.0,
        help="simulated time per run, in median full-trial times (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--max-trials", type=int, default=10_000, help="trials per run at most (default 10000)"
    )
    parser.add_argument("--processes", type=int, default=None, help="default: CPU cores")
    parser.add_argument(
        "--address", default=None,
        help="run the grid as Ray tasks on this cluster (auto, host:port, ray://host:10001); "
        "default or `local`: local processes",
    )  # fmt: skip
    parser.add_argument("--out", default="simulate", help="output folder (default ./simulate)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def parse(args: argparse.Namespace) -> dict[str, Any]:
    from orchestrator.searchers import STRATEGIES
    from orchestrator.simulation.setup import SIMULATED_SCHEDULERS

    combos = [c.strip() for c in args.combos.split(",") if c.strip()]
    for combo in combos:
        searcher, scheduler, _ = combo_parts(combo)
        if searcher not in STRATEGIES or scheduler not in SIMULATED_SCHEDULERS:
            raise UserError(
                f"--combos: {combo!r} is not searcher+scheduler; searchers: "
                f"{', '.join(STRATEGIES)}; schedulers: {', '.join(SIMULATED_SCHEDULERS)}"
            )
    try:
        workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    except ValueError:
        raise UserError(
            f"--workers: expected numbers such as 4,32,256, got {args.workers!r}"
        ) from None
    if not workers or any(not 1 <= w <= 1024 for w in workers):
        raise UserError(f"--workers: each must be between 1 and 1024, got {args.workers!r}")
    if args.seeds < 1 or args.budget <= 0 or args.max_trials < 1:
        raise UserError("--seeds, --budget and --max-trials must be positive")
    if args.first_seed < 0:
        raise UserError(f"--first-seed: must be 0 or more, got {args.first_seed}")
    sources = args.source or ["nb201"]
    for spec in sources:
        build_source(spec)  # a bad source fails here, in one line, before any process starts
    return {"sources": sources, "combos": combos, "workers": workers}


def execute(args: argparse.Namespace) -> int:
    grid = parse(args)
    first = args.first_seed
    tasks = [
        (source, combo, w, seed, args.budget, args.max_trials)
        for source in grid["sources"]
        for w in grid["workers"]
        for combo in grid["combos"]
        for seed in range(first, first + args.seeds)
    ]
    processes = max(1, min(args.processes or os.cpu_count() or 1, len(tasks)))
    address = args.address if args.address not in (None, "", "local") else None
    began = time.perf_counter()
    if address:  # connects now: a cluster it cannot reach is one line, before any file
        from orchestrator.simulation.distributed import on_ray

        finished, where = on_ray(run_one, tasks, address), f"Ray at {address}"
    else:
        finished, where = in_processes(run_one, tasks, processes), f"{processes} process(es)"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Each run's row is appended to runs.csv as it finishes (a long grid cut short keeps what
    # it ran); every file is written whole, in the grid's order, at the end.
    done: dict[int, dict] = {}
    with open(out / "runs.csv", "w", newline="") as partial:
        _collect(finished, done, partial, len(tasks))
    runs = [done[i] for i in range(len(tasks))]
    write_outputs(out, runs, plots=not args.no_plots)
    summary = summarize(runs)
    print(format_table(summary, grid["combos"]))
    cpu_hours = sum(r["row"]["cpu_s"] for r in runs) / 3600
    print(
        f"{len(runs)} simulated searches in {time.perf_counter() - began:.1f}s on {where}, "
        f"{cpu_hours:.3g} CPU-hours in all (runs.csv cpu_s); wrote {out}/runs.csv, "
        "trajectory.csv, rungs.csv, summary.csv"
    )
    return 0


def _collect(finished: Any, done: dict[int, dict], partial: Any, total: int) -> None:
    writer = None
    for i, run in finished:
        done[i] = run
        if writer is None:
            writer = csv.DictWriter(partial, fieldnames=list(run["row"]))
            writer.writeheader()
        writer.writerow(run["row"])
        partial.flush()
        if total >= 20 and len(done) % max(total // 20, 1) == 0:
            print(f"nasorch simulate: {len(done)}/{total} runs done", file=sys.stderr, flush=True)


@functools.lru_cache(maxsize=16)
def _source(spec: str) -> Any:
    return build_source(spec)  # one per process: the LCBench network loads once


def run_one(source_spec: str, combo: str, workers: int, seed: int, budget: float,
            max_trials: int) -> dict[str, Any]:  # fmt: skip
    cpu_began = time.process_time()  # the whole run's CPU, its source's first load included
    source = _source(source_spec)
    unit = source.full_time()
    searcher, scheduler, options = combo_parts(combo)
    result = simulate(
        source, searcher, scheduler, workers=workers, seed=seed, max_time=budget * unit,
        max_trials=max_trials, scheduler_options=options,
    )  # fmt: skip
    row = {
        "source": source.name, "combo": combo, "searcher": searcher, "scheduler": scheduler,
        "workers": workers, "seed": seed, "trials": result.trials, "epochs": result.epochs,
        "end_time_s": round(result.end_time, 3),
        **{f"cpu_{k}_s": round(v, 4) for k, v in result.cpu.items()},
        "cpu_ms_per_trial": round(
            1000 * (result.cpu["searcher"] + result.cpu["scheduler"]) / max(result.trials, 1), 4
        ),
    }  # fmt: skip
    for name, fraction in BUDGETS:
        best = result.best_at(fraction * budget * unit)
        row[f"regret_{name}"] = 1.0 if best is None else source.regret(best)
    stops = Counter((epoch, status) for _, epoch, status in result.stops)
    row["cpu_s"] = round(time.process_time() - cpu_began, 4)
    return {
        "row": row,
        "trajectory": [(t, e, b, source.regret(b)) for t, e, b in result.trajectory],
        "rungs": sorted(stops.items()),
        "unit": unit,
    }


def write_outputs(out: Path, runs: list[dict], plots: bool = True) -> None:
    rows = [r["row"] for r in runs]
    _write(out / "runs.csv", list(rows[0]), rows)
    keys = ("source", "combo", "workers", "seed")
    traj = [
        {**{k: r["row"][k] for k in keys}, "time_s": round(t, 3), "epochs": e, "best": b,
         "regret": round(g, 6)}
        for r in runs for t, e, b, g in r["trajectory"]
    ]  # fmt: skip
    _write(out / "trajectory.csv", [*keys, "time_s", "epochs", "best", "regret"], traj)
    rung_rows: dict[tuple, dict] = {}
    for r in runs:
        for (epoch, status), n in r["rungs"]:
            k = (*(r["row"][k] for k in keys), epoch)
            first = {**dict(zip(keys, k[:4], strict=True)), "epoch": epoch, "stopped": 0}
            entry = rung_rows.setdefault(k, {**first, "completed": 0})
            entry[status] += n
    _write(out / "rungs.csv", [*keys, "epoch", "stopped", "completed"], list(rung_rows.values()))
    _write(out / "summary.csv", list(SUMMARY_FIELDS), summarize(runs))
    if plots:
        plot_regret(out, runs)


SUMMARY_FIELDS = ("source", "workers", "combo", "budget", "mean_regret", "sem", "mean_rank", "runs")


def summarize(runs: list[dict]) -> list[dict]:
    """Mean normalised regret and average rank (1 = best; ties share) per source, workers,
    combination and budget; ranks compare combinations within the same source, workers and
    seed."""
    by_cell: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in runs:
        row = r["row"]
        for name, _ in BUDGETS:
            by_cell[(row["source"], row["workers"], row["seed"], name)][row["combo"]] = row[
                f"regret_{name}"
            ]
    ranks: dict[tuple, list[float]] = defaultdict(list)
    values: dict[tuple, list[float]] = defaultdict(list)
    for (source, workers, _, budget), regrets in by_cell.items():
        combos = list(regrets)
        order = _ranks([regrets[c] for c in combos])
        for combo, rank in zip(combos, order, strict=True):
            ranks[(source, workers, combo, budget)].append(rank)
            values[(source, workers, combo, budget)].append(regrets[combo])
    out = []
    for key, v in values.items():
        arr = np.asarray(v)
        sem = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else 0.0
        out.append({
            "source": key[0], "workers": key[1], "combo": key[2], "budget": key[3],
            "mean_regret": round(float(arr.mean()), 6), "sem": round(sem, 6),
            "mean_rank": round(float(np.mean(ranks[key])), 3), "runs": len(arr),
        })  # fmt: skip
    return out


def _ranks(values: list[float]) -> list[float]:
    arr = np.asarray(values)
    return [float((arr < v).sum() + ((arr == v).sum() + 1) / 2) for v in arr]


def format_table(summary: list[dict], combos: list[str]) -> str:
    """Mean normalised regret / average rank per combination at each budget, over every source
    and worker count."""
    lines = [f"{'combination':24s}" + "".join(f"{b:>22s}" for b, _ in BUDGETS)]
    for combo in combos:
        cells = []
        for budget, _ in BUDGETS:
            rows = [s for s in summary if s["combo"] == combo and s["budget"] == budget]
            if not rows:
                cells.append(f"{'-':>22s}")
                continue
            regret = np.mean([s["mean_regret"] for s in rows])
            rank = np.mean([s["mean_rank"] for s in rows])
            cells.append(f"{regret:>12.4f} (rank {rank:4.2f})")
        lines.append(f"{combo:24s}" + "".join(cells))
    return "\n".join(lines)


def plot_regret(out: Path, runs: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["row"]["source"], r["row"]["workers"])].append(r)
    for (source, workers), members in groups.items():
        unit = members[0]["unit"]
        horizon = max(r["row"]["end_time_s"] for r in members) / unit
        grid = np.linspace(0, max(horizon, 1e-9), 200)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for combo in dict.fromkeys(r["row"]["combo"] for r in members):
            curves = [_step(r["trajectory"], grid * unit) for r in members
                      if r["row"]["combo"] == combo]  # fmt: skip
            ax.plot(grid, np.mean(curves, axis=0), label=combo)
        ax.set_yscale("log")
        ax.set_xlabel("simulated time (median full trials)")
        ax.set_ylabel("mean normalised regret")
        ax.set_title(f"{source}, {workers} workers")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"regret_{source}_w{workers}.png", dpi=100)
        plt.close(fig)


def _step(trajectory: list[tuple], times: np.ndarray) -> np.ndarray:
    """Regret at each of `times` (1 before the first result), floored for a log scale."""
    out = np.ones(len(times))
    for t, _, _, regret in trajectory:
        out[times >= t] = regret
    return np.maximum(out, 1e-5)


def _write(path: Path, fields: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
