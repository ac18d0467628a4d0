"""Transfer between LCBench tasks in simulated time: a warm start from a related task's record.

    python benchmarks/transfer_lcbench.py                      # 4 tasks, 12 ordered pairs
    python benchmarks/transfer_lcbench.py --tasks 3945,7593 --seeds 5

For each seed, a source search (`guided` + ASHA, `--workers` simulated workers, `--budget`
median full-trial times) runs on every task and its trials become the record a real search would
read back from MLflow (PastTrial: the last value each trial reached, complete or stopped). A
search on another task is then warm-started through `WarmStart.plan`, exactly as
`orchestrator/warm_start/setup.py` does for a related task (same recipe, other data): the
source's `--top-k` best configurations are suggested first. It runs beside a cold start on the
same task and seed, and against a control whose source values are shuffled over its
configurations (an unrelated task). Prints mean normalised regret at the early, middle and late
budget (1, 3 and 10 T by default) per ordered pair and overall.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.simulation import build_source, simulate  # noqa: E402
from orchestrator.warm_start.fingerprint import Fingerprint  # noqa: E402
from orchestrator.warm_start.plan import PastTrial, WarmStart  # noqa: E402

BUDGETS = (("early", 0.1), ("middle", 0.3), ("late", 1.0))
SEARCHER, SCHEDULER = "guided", "asha"


def source_record(task: str, seed: int, workers: int, budget: float) -> list[tuple]:
    src = build_source(f"lcbench:{task}")
    result = simulate(src, SEARCHER, SCHEDULER, workers=workers, seed=seed,
                      max_time=budget * src.full_time(), keep_trials=True)  # fmt: skip
    return result.ended


def to_past(ended: list[tuple], space, *, shuffle_seed: int | None) -> list[PastTrial]:
    values = [v for _, v, _, _ in ended]
    if shuffle_seed is not None:  # an unrelated task: the same configurations, other values
        random.Random(shuffle_seed).shuffle(values)
    return [
        PastTrial(arch, space.key(arch), value, epochs, complete, "source", "recipe")
        for (arch, _, epochs, complete), value in zip(ended, values, strict=True)
    ]


def target_regrets(task: str, seed: int, workers: int, budget: float, seeds: list) -> list:
    src = build_source(f"lcbench:{task}")
    unit = src.full_time()
    result = simulate(src, SEARCHER, SCHEDULER, workers=workers, seed=seed,
                      max_time=budget * unit, seeds=seeds)  # fmt: skip
    out = []
    for _, frac in BUDGETS:
        best = result.best_at(frac * budget * unit)
        out.append(1.0 if best is None else src.regret(best))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="3945,7593,34539,126025")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--top-k", type=int, default=25)
    parser.add_argument("--processes", type=int, default=None)
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    seeds = range(args.seeds)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.processes) as pool:
        jobs = [(t, s, args.workers, args.budget) for t in tasks for s in seeds]
        records = dict(zip([(t, s) for t in tasks for s in seeds],
                           pool.starmap(source_record, jobs)))  # fmt: skip
        space = build_source(f"lcbench:{tasks[0]}").space
        here = Fingerprint(full="target", recipe="recipe")
        runs = {}  # (kind, source, target, seed) -> regrets
        for target in tasks:
            for s in seeds:
                runs[("cold", "-", target, s)] = (target, s, [])
                for source in tasks:
                    if source == target:
                        continue
                    for kind, shuffle in (("warm", None), ("shuffled", 1000 + s)):
                        past = to_past(records[(source, s)], space, shuffle_seed=shuffle)
                        plan = WarmStart.plan(past, here, mode="max", top_k=args.top_k)
                        runs[(kind, source, target, s)] = (target, s, plan.seeds)
        keys = list(runs)
        regrets = pool.starmap(
            target_regrets,
            [(t, s, args.workers, args.budget, sd) for t, s, sd in runs.values()],
        )
    got = dict(zip(keys, regrets))
    print(f"\nmean normalised regret, {SEARCHER}+{SCHEDULER}, {args.workers} workers, "
          f"{len(seeds)} seeds, top_k {args.top_k} (early / middle / late)")  # fmt: skip
    print(f"{'source -> target':24s}" + "".join(f"{k:>26s}" for k in ("cold", "warm", "shuffled")))
    totals = {k: [] for k in ("cold", "warm", "shuffled")}
    for target in tasks:
        cold = np.mean([got[("cold", "-", target, s)] for s in seeds], axis=0)
        for source in tasks:
            if source == target:
                continue
            row = {"cold": cold}
            for kind in ("warm", "shuffled"):
                row[kind] = np.mean([got[(kind, source, target, s)] for s in seeds], axis=0)
            for k, v in row.items():
                totals[k].append(v)
            cells = "".join(f"{' / '.join(f'{x:.4f}' for x in row[k]):>26s}" for k in row)
            print(f"{source + ' -> ' + target:24s}{cells}")
    means = {k: np.mean(v, axis=0) for k, v in totals.items()}
    cells = "".join(f"{' / '.join(f'{x:.4f}' for x in means[k]):>26s}" for k in means)
    print(f"{'all pairs':24s}{cells}")
    print(f"budgets: {', '.join(f'{n} {f * args.budget:g} T' for n, f in BUDGETS)}")


if __name__ == "__main__":
    main()
