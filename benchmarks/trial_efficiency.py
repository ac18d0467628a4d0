"""How much of a trial's time is training: one trial's epoch inside nasorch (through Ray, with a
checkpoint and an MLflow record every epoch) against a plain PyTorch loop over the same network,
data and batch size, in the same run. Target on CPU: ratio (plain / nasorch) >= 0.9.

The images are generated (CIFAR-sized, 3x32x32, in an .npz file): the point is the loop's
overhead, not the accuracy. The network is the conv space's architecture that nasorch's trial
trained; the plain loop builds the same one. Where nasorch's extra time goes is printed from the
plain loop's own parts (validation, checkpoint) and what is left (Ray's report and bookkeeping).
With CUDA, it also reports images/s of a trial at `gpu: 1`, `0.5` and `0.25` (1, 2 and 4 trials
sharing the GPU), AMP on and off, against the plain loop.

    python benchmarks/trial_efficiency.py [--epochs 4] [--images 12000]
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = {"name": "conv", "options": {"max_stages": 2, "max_blocks": 1, "channels": [16, 32],
                                     "kernels": [3], "batch_sizes": [128]}}  # fmt: skip


def make_images(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 255, (n, 3, 32, 32), dtype=np.uint8)
    np.savez(folder / "images.npz", x=x, y=y)
    return folder / "images.npz"


def nasorch_trial(data: Path, folder: Path, epochs: int, gpu: float, amp: str) -> tuple:
    """(median epoch seconds from epoch 2, the trial's arch, trials run at once)."""
    import orchestrator

    concurrent = max(1, int(round(1 / gpu))) if gpu else 1
    cfg = {
        "name": f"efficiency-{int(gpu * 100)}-{amp}",
        "num_samples": concurrent,
        "max_concurrent_trials": concurrent,
        "search_space": SPACE,
        "trainable": {"name": "torch", "options": {
            "dataset": {"format": "npz", "path": str(data), "test": 0.1},
            "epochs": epochs, "optimizer": "sgd", "amp": amp}},
        "resources": {"cpu": 1, "gpu": gpu},
        "storage_path": str(folder / "ray"),
        "tracking": {"uri": f"sqlite:///{folder}/mlflow.db"},
    }  # fmt: skip
    result = orchestrator.run(cfg, progress=False)
    times = []
    for results in Path(result.experiment_path).glob("t*/result.json"):
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        times += [r["time_this_iter_s"] for r in rows[1:]]  # epoch 1 pays the warm-up
    arch = json.loads(result.best["arch_json"])
    return statistics.median(times), arch, concurrent


def plain_loop(data: Path, arch: dict, epochs: int, device: str, amp: str) -> dict[str, float]:
    """Median seconds per epoch of each part: train, validate, checkpoint."""
    import torch

    from search_spaces import SEARCH_SPACES
    from trainables import datasets, recipe

    torch.set_num_threads(1)
    split = datasets.load({"format": "npz", "path": str(data), "test": 0.1}, "image")
    space = SEARCH_SPACES["conv"](**SPACE["options"])
    dev = torch.device(device)
    model = space.build_model(arch, split.input_shape, split.num_classes).to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=arch["lr"], momentum=0.9)
    x, y = torch.from_numpy(split.x_train).to(dev), torch.from_numpy(split.y_train).to(dev)
    xv, yv = torch.from_numpy(split.x_val).to(dev), torch.from_numpy(split.y_val).to(dev)
    loss_fn, bs = torch.nn.CrossEntropyLoss(), int(arch["batch_size"])
    parts: dict[str, list[float]] = {"train": [], "validate": [], "checkpoint": []}
    for epoch in range(1, epochs + 1):
        began = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), device=dev)
        for i in range(0, len(x), bs):
            idx = order[i : i + bs]
            optimizer.zero_grad()
            with recipe.autocast(dev, amp):
                loss = loss_fn(model(x[idx]).float(), y[idx])
            loss.backward()
            optimizer.step()
            loss.item()
        trained = time.perf_counter()
        model.eval()
        with torch.no_grad(), recipe.autocast(dev, amp):
            for i in range(0, len(xv), bs * 4):
                logits = model(xv[i : i + bs * 4]).float()  # as the trial: loss and accuracy
                loss_fn(logits, yv[i : i + bs * 4]).item()
                (logits.argmax(1) == yv[i : i + bs * 4]).sum().item()
        validated = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save(state, os.path.join(d, "state.pt"))
        saved = time.perf_counter()
        if epoch > 1:
            parts["train"].append(trained - began)
            parts["validate"].append(validated - trained)
            parts["checkpoint"].append(saved - validated)
    return {k: statistics.median(v) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images", type=int, default=12000)
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = make_images(folder, args.images)
        epoch, arch, _ = nasorch_trial(data, folder, args.epochs, 0.0, "off")
        plain = plain_loop(data, arch, args.epochs, "cpu", "off")
        total = sum(plain.values())
        batch = arch["batch_size"]
        print(
            f"CPU, one trial, {args.images} images 3x32x32, batch {batch}, epochs 2-{args.epochs}"
        )
        parts = ", ".join(f"{k} {v:.3f}" for k, v in plain.items())
        print(f"  plain PyTorch loop  {total:7.3f} s/epoch  ({parts})")
        rest = max(0.0, epoch - total)
        print(
            f"  nasorch trial       {epoch:7.3f} s/epoch  (report, checkpoint, records: {rest:.3f})"
        )
        print(f"  ratio plain/nasorch {total / epoch:7.3f}  (target >= 0.9)")
        if not torch.cuda.is_available():
            print("CUDA: no GPU here; the GPU part did not run")
            return
        n_train = int(args.images * 0.9 * 0.9)
        for amp in ("off", "bf16"):
            plain = plain_loop(data, arch, args.epochs, "cuda", amp)
            base = n_train / plain["train"]
            print(f"CUDA amp={amp}: plain loop {base:,.0f} images/s (train only)")
            for gpu in (1.0, 0.5, 0.25):
                epoch, _, shared = nasorch_trial(data, folder, args.epochs, gpu, amp)
                rate = n_train / epoch
                print(
                    f"  gpu: {gpu:<4}  {shared} trials at once: {rate:,.0f} images/s a trial "
                    f"({rate * shared:,.0f} in all; {rate / base:.2f}x the plain loop's)"
                )


if __name__ == "__main__":
    main()
