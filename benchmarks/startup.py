"""Start and finish: a search of 1 trial and 1 epoch as a whole process, against bare Ray Tune.

A user iterating on a config pays a search's fixed cost every time: imports, Ray's start, the
MLflow store, the first candidate's costing, the final summary. This times, in one run and
alternating, `nasorch run` of a 1-trial, 1-epoch search (the quickstart's space and data) and a
plain Ray Tune script that trains the same kind of network for 1 epoch, each as a fresh process,
and prints the medians, nasorch's ratio (target: within 1.3x of bare Ray Tune) and where
nasorch's driver spends its time (its own log of phases).

    python benchmarks/startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = textwrap.dedent(
    """
    import os, torch
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune
    from sklearn.datasets import load_digits

    def train(config):
        x, y = load_digits(return_X_y=True)
        x, y = torch.tensor(x, dtype=torch.float32) / 16, torch.tensor(y)
        torch.set_num_threads(1)
        width = config["width"]
        model = torch.nn.Sequential(
            torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10)
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for i in range(0, len(x), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
        acc = (model(x).argmax(1) == y).float().mean().item()
        tune.report({"val_accuracy": acc})

    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    tuner = tune.Tuner(
        train,
        param_space={"width": tune.choice([32, 64])},
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", num_samples=1),
        run_config=tune.RunConfig(storage_path=os.path.abspath("bare"), verbose=0),
    )
    print(tuner.fit().get_best_result().metrics["val_accuracy"])
    """
)


def timed(cmd: list[str], cwd: str, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NASORCH_PROFILE": "1"}
    times: dict[str, list[float]] = {"bare Ray Tune": [], "nasorch run": []}
    phases = ""
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "bare.py").write_text(BARE)
        nasorch = [
            sys.executable, "-m", "orchestrator.commands.cli", "run",
            str(ROOT / "examples/quickstart.yaml"),
            "--quiet", "--set", "num_samples=1", "--set", "trainable.options.epochs=1",
            "--set", "scheduler={name: fifo}",
        ]  # fmt: skip
        timed(nasorch, root, env)  # warm-up: creates the MLflow store, as a user's first search
        for i in range(args.repeats):
            bare, _ = timed([sys.executable, "bare.py"], root, env)
            ours, out = timed(nasorch, root, env)
            times["bare Ray Tune"].append(bare)
            times["nasorch run"].append(ours)
            phases = "\n".join(line for line in out.splitlines() if line.startswith("[profile]"))
            print(f"round {i + 1}: bare Ray Tune {bare:.1f} s, nasorch run {ours:.1f} s")
    bare = statistics.median(times["bare Ray Tune"])
    ours = statistics.median(times["nasorch run"])
    print(f"\nwhole-process wall time, median of {args.repeats}:")
    print(f"  bare Ray Tune  {bare:6.1f} s")
    print(f"  nasorch run    {ours:6.1f} s   {ours / bare:.2f}x (target <= 1.3x)")
    if phases:
        print("\nwhere nasorch's driver spent the last round:\n" + phases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
