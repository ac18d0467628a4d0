"""Partial evaluation measured in simulated time: docs/benchmarks/simulated.md's tables.

    python benchmarks/simulated.py                       # the full grid of issue #15
    python benchmarks/simulated.py --seeds 3 --workers 4,32 --tasks 3945,7593 --trials 2000
    python benchmarks/simulated.py --merge DIR [DIR ...]   # one table from grids run in parts

Part 1 runs `nasorch simulate` (orchestrator/simulation/study.py) on the NB201 curves and the
LCBench tasks, every combination at each worker count, and prints mean normalised regret and
average rank at the early, middle and late budgets (files in --out). Part 2 measures the
decision loop's CPU per trial (searcher + scheduler, no training) for each searcher with ASHA
(`fidelity` with its own scheduler) at 256 simulated workers, at 1k, 2k, 5k and 10k trials,
and plots it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.simulation import (  # noqa: E402
    COMBOS,
    build_source,
    simulate,
    study,  # noqa: E402
)
from trainables.lcbench import REPORTED_TASKS  # noqa: E402

MARKS = (1000, 2000, 5000, 10000)
# A searcher measured with its own scheduler companion (its promotions are decisions too).
COST_SCHEDULERS = {"fidelity": "fidelity"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", default="4,32,256")
    parser.add_argument("--tasks", default=",".join(map(str, REPORTED_TASKS)))
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--max-trials", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=10_000, help="part 2: trials per run")
    parser.add_argument("--cost-searchers", default="random,tpe,guided,rungs,fidelity")
    parser.add_argument("--skip", choices=("quality", "cost"), default=None)
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--out", default="simulate-bench")
    parser.add_argument("--merge", nargs="+", metavar="DIR", help="tables from these runs.csv")
    args = parser.parse_args()
    out = Path(args.out)
    if args.merge:
        merge(args.merge)
        return

    if args.skip != "quality":
        sources = ["nb201"] + [f"lcbench:{t}" for t in args.tasks.split(",") if t]
        # `nasorch simulate`'s own parser: every option it has gets its default.
        simulate_args = argparse.ArgumentParser()
        study.add_arguments(simulate_args)
        grid = simulate_args.parse_args([])
        vars(grid).update(
            source=sources, combos=",".join(COMBOS), workers=args.workers, seeds=args.seeds,
            budget=args.budget, max_trials=args.max_trials, processes=args.processes,
            out=str(out),
        )  # fmt: skip
        study.execute(grid)
    if args.skip != "cost":
        decision_cost(args.cost_searchers.split(","), args.trials, out, args.processes)


def merge(folders: list[str]) -> None:
    """The regret table of grids run in parts (each `nasorch simulate --out DIR`), over the
    (source, workers, seed) cells that every combination ran, so ranks compare like with
    like; per worker count and over all, with the CPU-hours of every run read."""
    import csv
    from collections import defaultdict

    rows = []
    for folder in folders:
        with open(Path(folder) / "runs.csv", newline="") as f:
            rows += list(csv.DictReader(f))
    # A run in two folders (a part rerun) counts once: the later folder's.
    rows = list({(r["source"], r["combo"], r["workers"], r["seed"]): r for r in rows}.values())
    for r in rows:
        r["workers"], r["seed"] = int(r["workers"]), int(r["seed"])
        for name, _ in study.BUDGETS:
            r[f"regret_{name}"] = float(r[f"regret_{name}"])
    combos = [c for c in COMBOS if any(r["combo"] == c for r in rows)]
    cells: dict[tuple, set] = defaultdict(set)
    for r in rows:
        cells[(r["source"], r["workers"], r["seed"])].add(r["combo"])
    full = {cell for cell, ran in cells.items() if ran == set(combos)}
    runs = [{"row": r} for r in rows if (r["source"], r["workers"], r["seed"]) in full]
    summary = study.summarize(runs)
    for workers in sorted({cell[1] for cell in full}):
        seeds = len({c[2] for c in full if c[1] == workers})
        sources = len({c[0] for c in full if c[1] == workers})
        print(f"\n{workers} workers ({sources} sources, up to {seeds} seeds each):")
        print(study.format_table([s for s in summary if s["workers"] == workers], combos))
    print(f"\nall ({len(full)} source x workers x seed cells, {len(runs)} searches):")
    print(study.format_table(summary, combos))
    cpu = sum(float(r.get("cpu_s") or 0) for r in rows) / 3600
    print(f"{len(rows)} searches read, {cpu:.3g} CPU-hours in all (runs.csv cpu_s)")


def _cost(searcher: str, trials: int) -> tuple[str, list[tuple[int, float]], float]:
    source = build_source(f"lcbench:{REPORTED_TASKS[0]}")
    began = time.perf_counter()
    marks = tuple(m for m in MARKS if m <= trials) or (trials,)
    scheduler = COST_SCHEDULERS.get(searcher, "asha")
    result = simulate(source, searcher, scheduler, workers=256, seed=0, max_trials=trials,
                      cost_marks=marks)  # fmt: skip
    return searcher, result.cost_at, time.perf_counter() - began


def decision_cost(searchers: list[str], trials: int, out: Path, processes: int | None) -> None:
    """CPU per trial of the decision loop over the trials since the previous mark (the cost at
    10k is that of trials 5,001 to 10,000)."""
    out.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        rows = pool.starmap(_cost, [(s, trials) for s in searchers])
    print(f"\ndecision loop CPU per trial (ms; searcher + scheduler), ASHA (fidelity: its own "
          f"scheduler), 256 workers, "
          f"LCBench {REPORTED_TASKS[0]}")  # fmt: skip
    marks = sorted({n for _, at, _ in rows for n, _ in at})
    print(f"{'searcher':10s}" + "".join(f"{n:>10d}" for n in marks) + f"{'wall s':>10s}")
    with open(out / "decision_cost.csv", "w") as f:
        f.write("searcher,trials,cpu_ms_per_trial\n")
        for searcher, at, wall in rows:
            cells = dict(at)
            print(f"{searcher:10s}" + "".join(
                f"{1000 * cells[n]:>10.2f}" if n in cells else f"{'-':>10s}" for n in marks
            ) + f"{wall:>10.0f}")  # fmt: skip
            for n, c in at:
                f.write(f"{searcher},{n},{1000 * c:.3f}\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for searcher, at, _ in rows:
        ax.plot([n for n, _ in at], [1000 * c for _, c in at], marker="o", label=searcher)
    ax.set_xlabel("trials so far")
    ax.set_ylabel("decision CPU per trial (ms)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "decision_cost.png", dpi=100)
    print(f"wrote {out}/decision_cost.csv, decision_cost.png")


if __name__ == "__main__":
    main()
