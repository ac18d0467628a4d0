"""`nasorch bench --warm-from SOURCE`: warm starts measured in-process, as a real search does them.

Per searcher and seed: a source search of `--warm-budget` evaluations on SOURCE (the searcher
with its own seed), whose results become `PastTrial`s with the fingerprints a real record would
carry (the same recipe; the same data only when SOURCE is the target table itself); then
`WarmStart.plan` exactly as orchestrator/warm_start/setup.py applies it (the strategy primed with
the search's own past, complete earlier trials answering proposals through the real `Gate`, a
related task's best tried first); then the warm search on the target, and a cold one beside it.
Best-so-far is counted against evaluations *trained*: an answer from the record is free.

Two cases, told apart by the tables:
- reuse (SOURCE is the target table): the second search trains only what the first did not,
  and the first and second together are compared with one cold search of both budgets;
- transfer (another table, or `--shuffle-source`: the source's values permuted over its archs,
  an unrelated task as a control): warm against cold at the same number of evaluations.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path
from typing import Any

from orchestrator.core.errors import UserError

CHECKPOINTS = (10, 25, 50, 100, 200)
SOURCE_SEED = 10_000  # the source search's seed is seed + this: not the target's random stream
SHUFFLE_SEED = 0  # the permutation of --shuffle-source: fixed, so every run sees one task
# The related task's best tried first: what transfer across NAS-Bench-201's datasets needed
# (docs/benchmarks/warm-start.md); the plan caps it at a quarter of --budget.
TOP_K = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warm-from",
        default=None,
        help="a source table (CSV, or nb201:cifar10|cifar100|imagenet): each run is warm-started "
        "from a --warm-budget search on it and compared with a cold start; the target --table "
        "itself measures reuse",
    )
    parser.add_argument(
        "--warm-budget", type=int, default=200, help="evaluations of the source search (200)"
    )
    parser.add_argument(
        "--shuffle-source",
        action="store_true",
        help="permute the source table's values over its archs (an unrelated task, a control)",
    )
    parser.add_argument(
        "--warm-top-k",
        type=int,
        default=TOP_K,
        help=f"the related task's best archs tried first, at most a quarter of --budget "
        f"(default {TOP_K})",
    )


def execute(
    args: argparse.Namespace, searchers: list[str], space_options: dict[str, Any], table: Any
) -> int:
    """Called by `bench.execute` once the common flags are checked and the target is loaded."""
    from orchestrator.commands.bench_runs import job_of, run_grid
    from trainables.errors import InputError
    from trainables.nb201_datasets import resolve
    from trainables.tabular import Table

    if args.objective2:
        raise UserError("--objective2 cannot be combined with --warm-from (one objective only)")
    if args.warm_budget <= 0:
        raise UserError(
            f"--warm-budget must be a positive number of evaluations, got {args.warm_budget}"
        )
    if args.warm_top_k < 0:
        raise UserError(f"--warm-top-k must be 0 or more, got {args.warm_top_k}")
    try:
        source_path = resolve(args.warm_from, Path(args.out) / "tables")
        source = Table.load(source_path, args.arch_column, args.metric_column)
    except InputError as e:
        raise UserError(f"--warm-from: {e}") from None
    reuse = source.path == table.path and not args.shuffle_source
    if not set(source.values) & set(table.values):
        raise UserError(
            f"--warm-from: {source.path.name} shares no architecture with {table.path.name}"
        )
    job = job_of(
        args,
        space_options,
        target=str(table.path),
        source=str(source.path),
        shuffle=bool(args.shuffle_source),
        reuse=reuse,
        warm_budget=args.warm_budget,
        top_k=args.warm_top_k,
    )
    runs, out, ran = run_grid(run_seed, job, searchers, args)
    write_results(out / "results.csv", runs)
    summary = summarize(runs, searchers, job)
    write_summary(out / "summary.csv", summary)
    plot(out / "best_so_far.png", runs, searchers, job)
    print(format_report(summary, runs, searchers, job, table, source))
    print(ran)
    print(f"wrote {out / 'results.csv'}, {out / 'summary.csv'}, {out / 'best_so_far.png'}")
    return 0


# ---- one seed --------------------------------------------------------------------------------
def run_seed(job: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    """Source search, warm search and cold search of one searcher and seed."""
    from threadpoolctl import threadpool_limits

    from orchestrator.warm_start.plan import PastTrial, WarmStart
    from search_spaces import SEARCH_SPACES
    from trainables.tabular import Table

    threadpool_limits(1)  # one BLAS thread per worker: the worker processes use the cores
    space = SEARCH_SPACES[job["space"]](**job["space_options"])
    target = Table.load(job["target"], job["arch_column"], job["metric_column"]).values
    source = Table.load(job["source"], job["arch_column"], job["metric_column"]).values
    if job["shuffle"]:
        source = shuffled(source)
    here, there = fingerprints(job)

    t0 = time.process_time()
    first = search(name, seed + SOURCE_SEED, space, source, job["warm_budget"], job["mode"])
    past = [
        PastTrial(
            arch=arch,
            key=key,
            value=value,
            epochs=1,
            complete=True,
            fingerprint=there.full,
            recipe=there.recipe,
            run_id=f"source-{i}",
        )
        for i, (key, arch, value) in enumerate(first["trained"])
    ]
    plan = WarmStart.plan(past, here, mode=job["mode"], top_k=job["top_k"], budget=job["budget"])
    warm = search(name, seed, space, target, job["budget"], job["mode"], plan)
    cold_budget = job["budget"] + (job["warm_budget"] if job["reuse"] else 0)
    cold = search(name, seed, space, target, cold_budget, job["mode"])
    source_keys = {k for k, _, _ in first["trained"]}
    return {
        "searcher": name,
        "seed": seed,
        "source": first["curve"],
        "warm": warm["curve"],
        "cold": cold["curve"],
        "answered": warm["answered"],
        "told": warm["told"],
        "seeded": len(plan.seeds),
        # Trained by the second search although the first had: reuse must make this 0.
        "trained_twice": sum(k in source_keys for k, _, _ in warm["trained"])
        if job["reuse"]
        else 0,
        "seconds": time.process_time() - t0,
    }


def fingerprints(job: dict[str, Any]) -> tuple[Any, Any]:
    """The target's and the source's fingerprints, as the tabular trainable's options give them:
    the table is data, so another table (or a shuffled one) shares only the recipe."""
    from orchestrator.warm_start.fingerprint import fingerprint

    space = {"name": job["space"], "options": job["space_options"]}

    def fp(table: str) -> Any:
        options = {"table": table, "arch_column": job["arch_column"]}
        return fingerprint("tabular", options, space, job["metric_column"])

    source = job["source"] + (f"#shuffled-{SHUFFLE_SEED}" if job["shuffle"] else "")
    return fp(job["target"]), fp(source)


def shuffled(values: dict[str, float]) -> dict[str, float]:
    """The same values on a random permutation of the archs: a task unrelated to the original."""
    keys, vals = list(values), list(values.values())
    random.Random(SHUFFLE_SEED).shuffle(vals)
    return dict(zip(keys, vals, strict=True))


def search(
    name: str,
    seed: int,
    space: Any,
    values: dict[str, float],
    budget: int,
    mode: str,
    plan: Any = None,
) -> dict[str, Any]:
    """`budget` trainings of searcher `name` on a table of `values`, through the simulator on
    one worker: StrategySearcher, its gate and `plan` (a warm start) as a real search applies
    them. `curve[n-1]`: the best result known after n trainings (answers from the record
    included: this task's results)."""
    from orchestrator.simulation.setup import by_evaluations, simulate
    from trainables.curves import TableCurves

    source = TableCurves.one_epoch("table", space, values, "value", mode)
    result = simulate(
        source, name, "fifo", workers=1, seed=seed, max_trials=budget, plan=plan,
        keep_trials=True,
    )  # fmt: skip
    return {
        "curve": by_evaluations(result, budget),
        "trained": [(space.key(arch), arch, value) for arch, value, _, _ in result.ended],
        "answered": int(result.gate.get("trials_reused", 0)),
        "told": int(result.gate.get("warm_start_results", 0)),
    }


# ---- report ----------------------------------------------------------------------------------
def write_results(path: Path, runs: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["searcher", "seed", "run", "evaluations", "best"])
        for r in runs:
            for run in ("source", "warm", "cold"):
                for i, b in enumerate(r[run], start=1):
                    w.writerow([r["searcher"], r["seed"], run, i, repr(b)])


def summarize(runs: list[dict[str, Any]], searchers: list[str], job: dict) -> list[dict]:
    import numpy as np

    rows = []
    for name in searchers:
        mine = [r for r in runs if r["searcher"] == name]
        for run in ("warm", "cold"):
            length = len(mine[0][run])
            for n in sorted({c for c in CHECKPOINTS if c <= length} | {length}):
                col = np.array([r[run][n - 1] for r in mine])
                rows.append(_row(name, run, n, col))
        if job["reuse"]:  # the first search and the second together: the best of both
            pick = max if job["mode"] == "max" else min
            col = np.array([pick(r["source"][-1], r["warm"][-1]) for r in mine])
            rows.append(_row(name, "source+warm", job["warm_budget"] + job["budget"], col))
    return rows


def _row(name: str, run: str, n: int, col: Any) -> dict:
    return {
        "searcher": name,
        "run": run,
        "evaluations": n,
        "mean": float(col.mean()),
        "std": float(col.std()),
        "runs": len(col),
    }


def write_summary(path: Path, summary: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["searcher", "run", "evaluations", "mean", "std", "runs"])
        w.writeheader()
        w.writerows(summary)


_COUNTS = ("told", "answered", "seeded")


def format_report(
    summary: list[dict], runs: list[dict], searchers: list[str], job: dict, table: Any, source: Any
) -> str:
    cell = {(r["searcher"], r["run"], r["evaluations"]): r for r in summary}
    what = "reuse" if job["reuse"] else "transfer"
    label = source.path.name + (" (shuffled)" if job["shuffle"] else "")
    lines = [
        f"{what}: {table.path.name} warm-started from a {job['warm_budget']}-evaluation search on "
        f"{label}; best-so-far {job['metric_column']} by evaluations trained, mean +/- std over "
        f"{runs and sum(r['searcher'] == searchers[0] for r in runs)} seeds "
        f"(table optimum {table.best(job['mode']):.4g})"
    ]
    for name in searchers:
        mine = [r for r in runs if r["searcher"] == name]
        for run in ("cold", "warm"):
            points = sorted(n for (s, k, n) in cell if s == name and k == run)
            lines.append(
                f"  {name} {run}: "
                + ", ".join(
                    f"@{n} {cell[(name, run, n)]['mean']:.2f} +/- {cell[(name, run, n)]['std']:.2f}"
                    for n in points
                )
            )
        told, answered, seeded = (sum(r[k] for r in mine) / len(mine) for k in _COUNTS)
        lines.append(
            f"  {name}: told {told:.1f} earlier results, {answered:.1f} proposals answered "
            f"from the record, {seeded:.1f} related archs tried first (means per run)"
        )
        if job["reuse"]:
            both = cell[(name, "source+warm", job["warm_budget"] + job["budget"])]
            single = cell[(name, "cold", job["warm_budget"] + job["budget"])]
            twice = sum(r["trained_twice"] for r in mine)
            lines.append(
                f"  {name}: {job['warm_budget']}+{job['budget']} warm {both['mean']:.2f} +/- "
                f"{both['std']:.2f} vs one search of {job['warm_budget'] + job['budget']} "
                f"{single['mean']:.2f} +/- {single['std']:.2f}; architectures trained twice: "
                f"{twice}"
            )
    return "\n".join(lines)


def plot(path: Path, runs: list[dict], searchers: list[str], job: dict) -> None:
    """Mean best-so-far per searcher: cold dashed, warm solid, in one colour per searcher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, name in enumerate(searchers):
        for run, style in (("cold", "--"), ("warm", "-")):
            # A reuse cold run is longer (both budgets): drawn over the same x range.
            curves = np.array([r[run][: job["budget"]] for r in runs if r["searcher"] == name])
            x = np.arange(1, curves.shape[1] + 1)
            ax.plot(x, curves.mean(0), style, color=f"C{i}", lw=1.6, label=f"{name} {run}")
    ax.set_xscale("log")  # the first 25 evaluations are where a warm start shows
    ax.set_xlabel("evaluations trained")
    ax.set_ylabel(f"best {job['metric_column']} so far (mean over seeds)")
    label = Path(job["source"]).name + (" (shuffled)" if job["shuffle"] else "")
    ax.set_title(f"{Path(job['target']).name} warm-started from {label}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
