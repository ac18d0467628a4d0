"""Tracking overhead: bare Ray Tune against nasorch with full MLflow tracking, in one run.

Both drive the same no-op trainable (N trials x R reports) on the same local Ray instance with
the same concurrency and `reuse_actors=True`; the only differences are nasorch's searcher
adapter, progress and MLflow records (parent run, one child run per trial, every metric).

    python benchmarks/overhead.py [--trials 200] [--repeats 7] [--with-ray-mlflow]
    python benchmarks/overhead.py --trials 2000 --repeats 3      # bookkeeping at scale

Prints the throughput (reports per second) of each and nasorch's ratio to bare Ray Tune,
over all rounds and over rounds matched by the number of actors Ray Tune ended up using
(target: 0.9 or better), the time per trial in the first and the last 200 trials of each side
(nasorch's minus bare Ray Tune's is what tracking costs per trial: it should stay flat), the
driver's memory after each round, and how long nasorch's end of search (summary, leaderboard,
plots) took. `--with-ray-mlflow` adds Ray's own MLflowLoggerCallback for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPORTS = int(os.environ.get("NASORCH_BENCH_REPORTS", "10"))


def noop(config):
    from ray import tune

    for i in range(REPORTS):
        tune.report({"score": config["arch"]["x"] * (i + 1), "epoch": i + 1})


def end_times():
    """A Ray Tune callback that notes when each trial ends (the same on both sides); Ray is
    imported only once the benchmark runs."""
    from ray.tune import Callback

    class EndTimes(Callback):
        def __init__(self):
            self.ended: list[float] = []

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.ended.append(time.perf_counter())

    return EndTimes()


def window_costs(start: float, ended: list[float], window: int = 200) -> tuple[float, float]:
    """Milliseconds per trial over the first and the last `window` trials to end."""
    ended = sorted(ended)
    if len(ended) < 2 * window:
        window = max(1, len(ended) // 2)
    first = (ended[window - 1] - start) / window
    last = (ended[-1] - ended[-window - 1]) / window
    return first * 1000, last * 1000


def bare_ray_tune(trials: int, concurrency: int, root: str, callbacks=()) -> tuple[float, int]:
    from ray import tune

    def trainable(config):
        for i in range(REPORTS):
            tune.report({"score": config["x"] * (i + 1), "epoch": i + 1})

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            num_samples=trials,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=root, name="bare", verbose=0, callbacks=[*callbacks, ends := end_times()]
        ),
    )
    start = time.perf_counter()
    grid = tuner.fit()
    elapsed = time.perf_counter() - start
    WINDOWS.setdefault("bare Ray Tune", []).append(window_costs(start, ends.ended))
    return elapsed, len({r.metrics.get("pid") for r in grid})


WINDOWS: dict[str, list[tuple[float, float]]] = {}  # side -> per round (first, last) ms/trial
AFTER: dict[str, list[float]] = {"rss_mb": [], "record_s": []}  # nasorch, per round


def nasorch_run(
    trials: int, concurrency: int, root: str, name: str = "overhead", check: bool = True
) -> tuple[float, int]:
    import orchestrator

    cfg = {
        "name": name,
        "metric": "score",
        "num_samples": trials,
        "max_concurrent_trials": concurrency,
        "search_space": {
            "name": "custom",
            "options": {"params": {"x": {"type": "float", "low": 0, "high": 1}}},
        },
        "trainable": {"name": "benchmarks.overhead:noop"},
        "searcher": {"name": "random"},
        "scheduler": {"name": "fifo"},
        "storage_path": f"{root}/ray",
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db"},
    }
    ends = end_times()
    start = time.perf_counter()
    result = orchestrator.run(cfg, progress=False, callbacks=[ends])
    elapsed = time.perf_counter() - start
    workers = len(worker_pids(result.experiment_path))
    if not check:
        return elapsed, workers
    WINDOWS.setdefault("nasorch + MLflow", []).append(window_costs(start, ends.ended))
    AFTER["rss_mb"].append(rss_mb())
    AFTER["record_s"].append(result.timings.get("record", float("nan")))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs(
        [result.experiment_id], "tags.`nasorch.role` = 'trial'", max_results=5000
    )
    points = sum(len(client.get_metric_history(r.info.run_id, "score")) for r in runs[:20])
    assert len(runs) == trials, f"expected {trials} child runs, found {len(runs)}"
    assert points == 20 * REPORTS, f"expected every report in MLflow, found {points}"
    return elapsed, workers


def rss_mb() -> float:
    """The driver's resident memory now, in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def worker_pids(experiment_path: str) -> set:
    """The trial actors' processes, from the first result of each trial."""
    pids = set()
    for path in Path(experiment_path).glob("*/result.json"):
        with open(path) as f:
            pids.add(json.loads(f.readline() or "{}").get("pid"))
    return pids


def ray_mlflow_callback(trials: int, concurrency: int, root: str) -> tuple[float, int]:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    callback = MLflowLoggerCallback(
        tracking_uri=f"sqlite:///{root}/raymlflow.db", experiment_name="ray"
    )
    return bare_ray_tune(trials, concurrency, root, callbacks=[callback])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--with-ray-mlflow", action="store_true")
    parser.add_argument(
        "--repeats", type=int, default=7,
        help="alternate the two this many times and compare medians (this machine is noisy)",
    )  # fmt: skip
    args = parser.parse_args()

    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # both sides print nothing while timed
    import ray

    from orchestrator.execution.ray_session import init_ray

    init_ray(None)
    runs: dict[str, list[tuple[float, int]]] = {"bare Ray Tune": [], "nasorch + MLflow": []}
    with tempfile.TemporaryDirectory() as root:
        # Warm-up: the first trials pay for worker start-up and imports, and the first search
        # creates the MLflow store (a user's store exists after their first search); neither
        # side should pay that in the timed rounds.
        bare_ray_tune(4, args.concurrency, f"{root}/warm")
        nasorch_run(4, args.concurrency, f"{root}/nasorch", check=False)
        for i in range(args.repeats):
            bare = bare_ray_tune(args.trials, args.concurrency, f"{root}/bare{i}")
            runs["bare Ray Tune"].append(bare)
            ours = nasorch_run(args.trials, args.concurrency, f"{root}/nasorch", name=f"round{i}")
            runs["nasorch + MLflow"].append(ours)
            print(
                f"round {i + 1}: bare {bare[0]:.2f}s on {bare[1]} actors, "
                f"nasorch {ours[0]:.2f}s on {ours[1]} actors"
            )
        if args.with_ray_mlflow:
            ray_side = ray_mlflow_callback(args.trials, args.concurrency, f"{root}/raymlflow")
            runs["Ray MLflowLoggerCallback"] = [ray_side]
    ray.shutdown()
    report(runs, args)
    return 0


def report(runs: dict[str, list[tuple[float, int]]], args: argparse.Namespace) -> None:
    """Medians over all rounds, and over rounds matched by how many actors Ray Tune used.

    With reuse_actors and trials far shorter than an actor's start (here 10 reports take ~25 ms,
    an actor ~1 s), Ray Tune hands the next trial to the first actor that frees up and cancels
    the other actor still starting: whether a run keeps `concurrency` actors or falls back to one
    is decided by a race in its first second, for bare Ray Tune and nasorch alike, and it doubles
    the run time. Comparing rounds that ran on the same number of actors measures what nasorch
    adds; the all-rounds median also carries which side lost that race more often."""
    reports = args.trials * REPORTS
    print(
        f"\n{args.trials} trials x {REPORTS} reports, concurrency {args.concurrency}, "
        f"{args.repeats} alternating rounds"
    )
    print(f"{'':28s} {'median s':>8s} {'reports/s':>10s} {'ratio':>6s}   rounds on 1 actor")
    base = statistics.median(t for t, _ in runs["bare Ray Tune"])
    for name, rounds in runs.items():
        secs = statistics.median(t for t, _ in rounds)
        single = sum(1 for _, w in rounds if w == 1)
        print(f"{name:28s} {secs:8.2f} {reports / secs:10.1f} {base / secs:6.2f}x   {single}")
    ratios = {}
    for label, full in (("all actors", True), ("one actor", False)):
        sides = [
            [t for t, w in runs[name] if (w == args.concurrency) == full]
            for name in ("bare Ray Tune", "nasorch + MLflow")
        ]
        if all(sides):
            ratios[label] = statistics.median(sides[0]) / statistics.median(sides[1])
            print(f"rounds on {label}: nasorch at {ratios[label]:.2f}x of bare Ray Tune")
    print("\nms per trial, first and last 200 trials to end (median over rounds):")
    for name, rounds in WINDOWS.items():
        firsts, lasts = zip(*rounds)
        print(
            f"  {name:26s} first {statistics.median(firsts):7.2f}   "
            f"last {statistics.median(lasts):7.2f}"
        )
    if len(WINDOWS) == 2:
        (b_first, b_last), (n_first, n_last) = (
            tuple(statistics.median(x) for x in zip(*WINDOWS[k]))
            for k in ("bare Ray Tune", "nasorch + MLflow")
        )
        print(
            f"  tracking's cost per trial (nasorch - bare): first 200 {n_first - b_first:+.2f} ms, "
            f"last 200 {n_last - b_last:+.2f} ms"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss = ", ".join(f"{m:.0f}" for m in AFTER["rss_mb"])
    print(f"driver memory after each nasorch round (MB): {rss}; peak of the process {peak:.0f} MB")
    record = statistics.median(AFTER["record_s"]) if AFTER["record_s"] else float("nan")
    print(f"end of search (summary, leaderboard, plots), median: {record:.2f} s (target < 5 s)")
    overall = base / statistics.median(t for t, _ in runs["nasorch + MLflow"])
    headline = ratios.get("all actors", ratios.get("one actor", overall))
    print(
        f"\nnasorch throughput ratio vs bare Ray Tune: {headline:.2f}x, rounds matched by actors "
        f"used ({overall:.2f}x over all rounds); target >= 0.9"
    )


if __name__ == "__main__":
    sys.exit(main())
