"""Differentiable search against weight sharing and guided search, at counted compute, in one run.

Four real searches per seed on the NB201 space (digits as 1x8x8 images, C=8, N=1) with the
torch trainable, each through `orchestrator.run` (Ray Tune trials, MLflow records):

- `darts`: a supernet trained with alpha (`--supernet-epochs`), the argmax cell and the next
  most probable ones trained standalone (`--top-k` trials of `--epochs`);
- `darts_pt`: the supernet trained with alpha held uniform, then DARTS-PT's perturbation-based
  selection (Wang et al. 2021's "fixed alpha"), the weights tuned `--tune-epochs` after each
  edge's choice (counted in its compute);
- `supernet`: uniform path sampling for as many epochs, 200 cells ranked by inherited weights,
  the `--top-k` best trained standalone;
- `guided` + ASHA: `--guided-trials` standalone trials of up to `--epochs` (grace period 1,
  reduction factor 3), with no supernet.

    nice -n 19 python benchmarks/differentiable.py [--seeds 0,1,2] [--supernet-epochs 20]

Compute is counted in one unit for every method, device-seconds: wall seconds of the work
itself on the same device (one CPU thread here), measured with time.perf_counter around it.
For the supernet searchers the searcher's own timings (`supernet_train_seconds`: the supernet's
training, and for `darts` / `darts_pt` the selection, DARTS-PT's perturbation scoring and
tuning included; `supernet_score_seconds`: `supernet`'s 200 candidate rankings); for every
standalone trial of every method the sum of its epochs' `epoch_seconds` (the torch trainable's
training + validation of each epoch, read from Ray's result.json). A supernet epoch runs every
operation on every edge, so it is not counted as a standalone epoch; epochs are printed only
for reference. Printed per method: the best standalone validation accuracy (the last value
each trial reported), the device-seconds (total and their parts), the wall time, and how many
of the derived cell's edges are skip connections and parameter-free (none, skip, avg pool);
for `supernet` the derived cell is its top-ranked one, for `guided` its best trial's. `cifar10`
is the derived cell's CIFAR-10 test accuracy in the NAS-Bench-201 table (/work/shared/data),
for reference only: nothing here searches on CIFAR-10. Target: `darts_pt` does not collapse
(fewer than half its edges parameter-free) and is within 1 point of guided + ASHA's best at no
more than half its device-seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.resumable.recovery import unrecorded_results  # noqa: E402
from orchestrator.searchers.darts import PARAMETER_FREE  # noqa: E402
from search_spaces.nb201 import EDGES  # noqa: E402

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10.csv"
POINTS, COMPUTE = 1.0, 0.5  # target: within 1 point of guided's best at <= half its seconds


def searcher(method: str, args: argparse.Namespace) -> tuple[dict, dict, int]:
    """(searcher, scheduler, num_samples) of a method."""
    fifo = {"name": "fifo"}
    if method == "darts":
        options = {"supernet_epochs": args.supernet_epochs, "arch_lr": args.arch_lr}
        return {"name": "darts", "options": options}, fifo, args.top_k
    if method == "darts_pt":  # alpha stays uniform (its default): DARTS-PT's "fixed alpha"
        options = {"supernet_epochs": args.supernet_epochs, "tune_epochs": args.tune_epochs}
        return {"name": "darts_pt", "options": options}, fifo, args.top_k
    if method == "supernet":
        options = {"supernet_epochs": args.supernet_epochs, "candidates": 200,
                   "top_k": args.top_k, "calibration": 0}  # fmt: skip
        return {"name": "supernet", "options": options}, fifo, args.top_k
    asha = {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3}}
    return {"name": "guided"}, asha, args.guided_trials


def search(method: str, seed: int, args: argparse.Namespace, root: str) -> dict:
    import orchestrator

    strategy, scheduler, trials = searcher(method, args)
    cfg = {
        "name": f"differentiable-{method}-{seed}",
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": trials,
        "max_concurrent_trials": 2,
        "seed": seed,
        "search_space": {"name": "nb201", "options": {"C": args.C, "N": args.N}},
        "trainable": {"name": "torch", "options": {"dataset": "digits", "epochs": args.epochs}},
        "searcher": strategy,
        "scheduler": scheduler,
        "resources": {"cpu": 1, "gpu": 0},
        "storage_path": f"{root}/ray",
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db"},
    }
    start = time.perf_counter()
    result = orchestrator.run(cfg, progress=False)
    wall = time.perf_counter() - start
    seconds = trial_seconds(result.experiment_path)
    trials = result.trials.dropna(subset=["val_accuracy"])
    best = trials.loc[trials["val_accuracy"].idxmax()]
    supernet_epochs = args.supernet_epochs if method != "guided" else 0
    if method == "darts_pt":  # DARTS-PT's tuning after each edge's choice but the last
        supernet_epochs += (len(EDGES) - 1) * args.tune_epochs
    # A supernet searcher without its timings would be counted as free: fail instead.
    supernet_s = result.summary["supernet_train_seconds"] if method != "guided" else 0.0
    score_s = result.summary["supernet_score_seconds"] if method == "supernet" else 0.0
    trials_s = sum(seconds[t] for t in result.trials["trial_id"] if t in seconds)
    # The derived cell: the weight-sharing searchers' first hand-out; guided's best trial.
    cell_row = best if method == "guided" else trials.iloc[0]
    cell = json.loads(cell_row["arch_json"])["edges"]
    return {
        "method": method,
        "seed": seed,
        "best": float(best["val_accuracy"]),
        "seconds": supernet_s + score_s + trials_s,
        "supernet_s": supernet_s,
        "score_s": score_s,
        "trials_s": trials_s,
        "supernet_epochs": supernet_epochs,
        "epochs": int(result.trials["epochs"].sum()),
        "wall": wall,
        # Seconds are wall time: on a shared machine they grow with its load, printed beside.
        "load": os.getloadavg()[0],
        "skip": cell.count("skip_connect"),
        "free": sum(op in PARAMETER_FREE for op in cell),
        "cell": cell,
        # (device-seconds of that trial, its accuracy) in trial order: guided's best at any budget
        "trials": [
            (seconds.get(t, 0.0), float(v))
            for t, v in zip(trials["trial_id"], trials["val_accuracy"])
        ],
    }


def trial_seconds(experiment_path: str) -> dict[str, float]:
    """Trial id -> the sum of its epochs' `epoch_seconds`, from Ray's result.json files. A
    trial that reported epochs without them (not the torch trainable) is an error: its compute
    would count as zero."""
    out = {}
    for trial_id, results in unrecorded_results(experiment_path, {}).items():
        if any("epoch_seconds" not in r for r in results):
            raise RuntimeError(f"trial {trial_id} reported no epoch_seconds")
        out[trial_id] = sum(float(r["epoch_seconds"]) for r in results)
    return out


def best_within(row: dict, budget: float) -> float:
    """The best accuracy among the trials started before `budget` device-seconds were spent."""
    spent, best = 0.0, float("nan")
    for seconds, value in row["trials"]:
        if spent >= budget:
            break
        spent += seconds
        best = value if best != best else max(best, value)
    return best


def cifar10(cell: list[str], table: dict[str, float]) -> float:
    e = cell
    key = f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"
    return table.get(key, float("nan"))


MEANS = ("seconds", "supernet_s", "score_s", "trials_s", "supernet_epochs", "epochs", "wall")


def summary(rows: list[dict], table: dict[str, float]) -> list[dict]:
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        best = [r["best"] for r in mine]
        out.append(
            {
                "method": method,
                "seeds": len(mine),
                "best": statistics.mean(best),
                "std": statistics.stdev(best) if len(best) > 1 else 0.0,
                **{k: statistics.mean(r[k] for r in mine) for k in MEANS},
                "skip": statistics.mean(r["skip"] for r in mine),
                "free": statistics.mean(r["free"] for r in mine),
                "free_each": [r["free"] for r in mine],
                "cifar10": statistics.mean(cifar10(r["cell"], table) for r in mine),
            }
        )
    return out


def summary_table(means: list[dict]) -> str:
    lines = [
        f"{'method':<9} {'seeds':>5} {'best val_acc':>15} {'device s':>8} {'supernet s':>10} "
        f"{'ranking s':>9} {'trials s':>8} {'epochs':>9} {'wall s':>6} {'skip':>5} "
        f"{'free':>5} {'per seed':>8} {'cifar10':>7}"
    ]
    for m in means:
        each = ",".join(map(str, m["free_each"]))
        epochs = f"{m['supernet_epochs']:.0f}+{m['epochs']:.0f}"
        lines.append(
            f"{m['method']:<9} {m['seeds']:>5} {m['best']:>8.4f} +/- {m['std']:.3f} "
            f"{m['seconds']:>8.1f} {m['supernet_s']:>10.1f} {m['score_s']:>9.1f} "
            f"{m['trials_s']:>8.1f} {epochs:>9} {m['wall']:>6.0f} {m['skip']:>5.2f} "
            f"{m['free']:>5.2f} {each:>8} {m['cifar10']:>7.2f}"
        )
    return "\n".join(lines)


def verdict(means: list[dict], rows: list[dict]) -> str:
    """The target, judged on measured device-seconds only."""
    by = {m["method"]: m for m in means}
    if "darts_pt" not in by or "guided" not in by:
        return ""
    pt, guided = by["darts_pt"], by["guided"]
    below = 100 * (guided["best"] - pt["best"])
    ratio = pt["seconds"] / guided["seconds"]
    met = pt["free"] < 3 and below <= POINTS and ratio <= COMPUTE
    seeds_met = sum(free < 3 for free in pt["free_each"])
    at_equal = statistics.mean(
        best_within(r, pt["seconds"]) for r in rows if r["method"] == "guided"
    )
    side = "below" if below > 0 else "above"
    return (
        f"compute, device-seconds: darts_pt {pt['seconds']:.1f} s, guided + ASHA "
        f"{guided['seconds']:.1f} s: ratio {ratio:.2f}\n"
        f"guided + ASHA within darts_pt's {pt['seconds']:.1f} device-seconds: best "
        f"{at_equal:.4f}\n"
        f"darts_pt: {pt['free']:.2f} of 6 edges parameter-free on average (target < 3; fewer "
        f"than 3 on {seeds_met} of {len(pt['free_each'])} seeds), best accuracy "
        f"{abs(below):.2f} points {side} guided + ASHA's (target <= {POINTS:g} below) with "
        f"{ratio:.2f}x its device-seconds (target <= {COMPUTE:g}x): "
        f"{'target met' if met else 'TARGET MISSED'} on the means"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated; one search each")
    parser.add_argument("--methods", default="darts,darts_pt,supernet,guided")
    parser.add_argument("--supernet-epochs", type=int, default=20)
    parser.add_argument("--arch-lr", type=float, default=0.01, help="darts: alpha's step size")
    parser.add_argument("--tune-epochs", type=int, default=2, help="darts_pt: after each edge")
    parser.add_argument("--top-k", type=int, default=3, help="cells trained after a supernet")
    parser.add_argument("--epochs", type=int, default=12, help="a standalone trial's")
    parser.add_argument("--guided-trials", type=int, default=48)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import logging

    import pandas as pd
    import ray

    from orchestrator import compat

    table = {}
    if TABLE.exists():
        frame = pd.read_csv(TABLE)
        table = dict(zip(frame["arch"], frame["test_accuracy"], strict=True))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        **compat.local_ray_init_kwargs(),  # loopback only
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="nasorch-differentiable-") as root:
        for seed in seeds:
            for method in methods:
                rows.append(search(method, seed, args, root))
                r = rows[-1]
                print(
                    f"seed {seed} {method}: best {r['best']:.4f}, {r['seconds']:.1f} "
                    f"device-s (supernet {r['supernet_s']:.1f}, ranking {r['score_s']:.1f}, "
                    f"trials {r['trials_s']:.1f}), {r['wall']:.0f} s wall, 1-min load "
                    f"{r['load']:.1f}, derived cell {r['cell']} ({r['free']} parameter-free)",
                    flush=True,
                )
    ray.shutdown()
    print(
        f"\nNB201 C={args.C} N={args.N} on digits; {args.top_k} trials of {args.epochs} epochs "
        f"after {args.supernet_epochs} supernet epochs (darts: arch_lr {args.arch_lr:g}); "
        f"guided: {args.guided_trials} trials under ASHA (grace 1, reduction 3)"
    )
    means = summary(rows, table)
    print(f"\nmean over seeds {', '.join(map(str, seeds))}\n" + summary_table(means))
    line = verdict(means, rows)
    if line:
        print("\n" + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
