"""Tracking overhead: bare Ray Tune against nasorch with full MLflow tracking, in one run.

Both drive the same no-op trainable (N trials x R reports) on the same local Ray instance with
the same concurrency and `reuse_actors=True`; the only differences are nasorch's searcher
adapter, progress and MLflow records (parent run, one child run per trial, every metric).

    python benchmarks/overhead.py [--trials 200] [--reports 10] [--with-ray-mlflow]

Prints the throughput (reports per second) of each and nasorch's ratio to bare Ray Tune.
Target: 0.75 or better. `--with-ray-mlflow` adds Ray's own MLflowLoggerCallback for reference.
"""

from __future__ import annotations

import argparse
import os
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


def bare_ray_tune(trials: int, concurrency: int, root: str, callbacks=()) -> float:
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
            storage_path=root, name="bare", verbose=0, callbacks=list(callbacks)
        ),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def nasorch_run(
    trials: int, concurrency: int, root: str, name: str = "overhead", check: bool = True
) -> float:
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
    start = time.perf_counter()
    result = orchestrator.run(cfg, progress=False)
    elapsed = time.perf_counter() - start
    if not check:
        return elapsed
    from mlflow.tracking import MlflowClient

    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs(
        [result.experiment_id], "tags.`nasorch.role` = 'trial'", max_results=5000
    )
    points = sum(len(client.get_metric_history(r.info.run_id, "score")) for r in runs[:20])
    assert len(runs) == trials, f"expected {trials} child runs, found {len(runs)}"
    assert points == 20 * REPORTS, f"expected every report in MLflow, found {points}"
    return elapsed


def ray_mlflow_callback(trials: int, concurrency: int, root: str) -> float:
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
        "--repeats", type=int, default=5,
        help="alternate the two this many times and compare medians (this machine is noisy)",
    )  # fmt: skip
    args = parser.parse_args()

    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # both sides print nothing while timed
    import ray

    from orchestrator.runner import init_ray

    init_ray(None)
    times: dict[str, list[float]] = {"bare Ray Tune": [], "nasorch + MLflow": []}
    with tempfile.TemporaryDirectory() as root:
        # Warm-up: the first trials pay for worker start-up and imports, and the first search
        # creates the MLflow store (a user's store exists after their first search); neither
        # side should pay that in the timed rounds.
        bare_ray_tune(4, args.concurrency, f"{root}/warm")
        nasorch_run(4, args.concurrency, f"{root}/nasorch", check=False)
        for i in range(args.repeats):
            bare = bare_ray_tune(args.trials, args.concurrency, f"{root}/bare{i}")
            times["bare Ray Tune"].append(bare)
            times["nasorch + MLflow"].append(
                nasorch_run(args.trials, args.concurrency, f"{root}/nasorch", name=f"round{i}")
            )
            print(f"round {i + 1}: bare {bare:.2f}s, nasorch {times['nasorch + MLflow'][-1]:.2f}s")
        results = {name: statistics.median(ts) for name, ts in times.items()}
        if args.with_ray_mlflow:
            results["Ray MLflowLoggerCallback"] = ray_mlflow_callback(
                args.trials, args.concurrency, f"{root}/raymlflow"
            )
    ray.shutdown()

    reports = args.trials * REPORTS
    base = results["bare Ray Tune"]
    print(
        f"\n{args.trials} trials x {REPORTS} reports, concurrency {args.concurrency}, "
        f"median of {args.repeats} alternating rounds"
    )
    print(f"{'':28s} {'seconds':>8s} {'reports/s':>10s} {'ratio':>6s}")
    for name, secs in results.items():
        print(f"{name:28s} {secs:8.2f} {reports / secs:10.1f} {base / secs:6.2f}x")
    ratio = base / results["nasorch + MLflow"]
    print(f"\nnasorch throughput ratio vs bare Ray Tune: {ratio:.2f}x (target >= 0.75)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
