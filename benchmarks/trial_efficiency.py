"""How much of a trial's time is training: one trial's epoch inside nasorch (through Ray, with a
checkpoint and an MLflow record every epoch) against a plain PyTorch loop over the same network,
data and batch size, in the same run. Target on CPU: ratio (plain / nasorch) >= 0.9.

The images are generated (CIFAR-sized, 3x32x32, in an .npz file): the point is the loop's
overhead, not the accuracy. The network is one architecture of the conv space, pinned by the
space's options (ARCH; the search's `dedupe` off, so concurrent trials all train it): the CPU
trial, every GPU trial and the plain loop train the same network, and each trial's arch is
checked against it. Image counts are the split's own (the training images the data loader
returns), and the epochs timed are counted from what the trials reported (epoch 1, the warm-up,
is left out on both sides). Where nasorch's extra time goes is printed from the plain loop's own
parts (validation, checkpoint) and what is left (Ray's report and bookkeeping). With CUDA, it
also reports images/s of a trial at `gpu: 1`, `0.5` and `0.25` (1, 2 and 4 trials sharing the
GPU), AMP off and bf16, against the plain loop on the same GPU.

    python benchmarks/trial_efficiency.py [--epochs 5] [--images 12000]
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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# One network: every option a single value (lr a one-point range), so each sample is ARCH.
SPACE = {"name": "conv", "options": {
    "max_stages": 1, "max_blocks": 1, "channels": [32], "kernels": [3], "strides": [1],
    "pools": ["max"], "residual": [False], "lr": [0.01, 0.01], "batch_sizes": [128]}}  # fmt: skip
ARCH = {"stages": [{"channels": 32, "blocks": 1, "stride": 1, "pool": "max"}], "kernel": 3,
        "residual": False, "lr": 0.01, "batch_size": 128}  # fmt: skip


def make_images(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 255, (n, 3, 32, 32), dtype=np.uint8)
    np.savez(folder / "images.npz", x=x, y=y)
    return folder / "images.npz"


def dataset_spec(data: Path) -> dict[str, Any]:
    return {"format": "npz", "path": str(data), "test": 0.1}


def load_split(data: Path) -> Any:
    """The split the trial trains on, from the data loader itself (sizes are read, not assumed)."""
    from trainables import datasets

    return datasets.load(dataset_spec(data), "image")


def nasorch_trial(data: Path, folder: Path, epochs: int, gpu: float, amp: str) -> dict[str, Any]:
    """A search of trials of ARCH sharing the device: {seconds: median epoch seconds from epoch
    2 (Ray's time_this_iter_s: training, validation, report, checkpoint), timed: epochs timed,
    trials: trials run at once}. Raises if a trial trained another architecture."""
    import orchestrator

    concurrent = max(1, int(round(1 / gpu))) if gpu else 1
    cfg = {
        "name": f"efficiency-{int(gpu * 100)}-{amp}",
        "num_samples": concurrent,
        "max_concurrent_trials": concurrent,
        "dedupe": False,  # the same network in every trial, each trained
        "search_space": SPACE,
        "trainable": {"name": "torch", "options": {
            "dataset": dataset_spec(data), "epochs": epochs, "optimizer": "sgd", "amp": amp}},
        "resources": {"cpu": 1, "gpu": gpu},
        "storage_path": str(folder / "ray"),
        "tracking": {"uri": f"sqlite:///{folder}/mlflow.db"},
    }  # fmt: skip
    result = orchestrator.run(cfg, progress=False)
    archs = {json.dumps(json.loads(a), sort_keys=True) for a in result.trials["arch_json"]}
    if archs != {json.dumps(ARCH, sort_keys=True)}:
        raise RuntimeError(f"the trials trained {sorted(archs)}, not {ARCH}")
    times = []
    for results in Path(result.experiment_path).glob("t*/result.json"):
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        times += [r["time_this_iter_s"] for r in rows[1:]]  # epoch 1 pays the warm-up
    if not times:
        raise RuntimeError(f"no epoch after the first was reported ({cfg['name']})")
    return {"seconds": statistics.median(times), "timed": len(times), "trials": concurrent}


def plain_loop(split: Any, epochs: int, device: str, amp: str) -> dict[str, float]:
    """Median seconds per epoch of each part (train, validate, checkpoint) from epoch 2, and
    `timed`: the epochs they are the median of."""
    import torch

    from search_spaces import SEARCH_SPACES
    from trainables import recipe

    torch.set_num_threads(1)
    space = SEARCH_SPACES["conv"](**SPACE["options"])
    dev = torch.device(device)
    model = space.build_model(ARCH, split.input_shape, split.num_classes).to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=ARCH["lr"], momentum=0.9)
    x, y = torch.from_numpy(split.x_train).to(dev), torch.from_numpy(split.y_train).to(dev)
    xv, yv = torch.from_numpy(split.x_val).to(dev), torch.from_numpy(split.y_val).to(dev)
    loss_fn, bs = torch.nn.CrossEntropyLoss(), int(ARCH["batch_size"])
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
    if not parts["train"]:
        raise ValueError("epochs: at least 2 (epoch 1 is the warm-up, not timed)")
    out = {k: statistics.median(v) for k, v in parts.items()}
    out["timed"] = float(len(parts["train"]))
    return out


def gpu_rows(
    data: Path, folder: Path, split: Any, epochs: int, amps=("off", "bf16"), shares=(1.0, 0.5, 0.25)
) -> list[dict[str, Any]]:
    """Images/s of a trial of ARCH at each GPU share and AMP setting, against the plain loop's
    training on the same GPU: one row each."""
    n_train = len(split.x_train)
    rows = []
    for amp in amps:
        plain = plain_loop(split, epochs, "cuda", amp)
        base = n_train / plain["train"]
        for gpu in shares:
            trial = nasorch_trial(data, folder, epochs, gpu, amp)
            rate = n_train / trial["seconds"]
            rows.append({"amp": amp, "gpu": gpu, "plain": base, "rate": rate, **trial})
    return rows


def gpu_lines(rows: list[dict[str, Any]], n_train: int) -> list[str]:
    lines, amp = [], None
    for r in rows:
        if r["amp"] != amp:
            amp = r["amp"]
            lines.append(
                f"CUDA amp={amp}: plain loop {r['plain']:,.0f} images/s (train only, "
                f"{n_train} training images)"
            )
        lines.append(
            f"  gpu: {r['gpu']:<4}  {r['trials']} trials at once: {r['rate']:,.0f} images/s a "
            f"trial ({r['rate'] * r['trials']:,.0f} in all; {r['rate'] / r['plain']:.2f}x the "
            f"plain loop's; median of {r['timed']} epochs timed)"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epoch 1 is not timed")
    parser.add_argument("--images", type=int, default=12000)
    args = parser.parse_args(argv)
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = make_images(folder, args.images)
        split = load_split(data)
        n_train = len(split.x_train)
        trial = nasorch_trial(data, folder, args.epochs, 0.0, "off")
        plain = plain_loop(split, args.epochs, "cpu", "off")
        total = plain["train"] + plain["validate"] + plain["checkpoint"]
        epoch = trial["seconds"]
        print(
            f"CPU, one trial of {ARCH}, {n_train} training and {len(split.x_val)} validation "
            f"images 3x32x32 (of {args.images}), epochs 2-{args.epochs}: median of "
            f"{trial['timed']} epochs timed in the trial, {plain['timed']:.0f} in the loop"
        )
        parts = ", ".join(f"{k} {plain[k]:.3f}" for k in ("train", "validate", "checkpoint"))
        print(f"  plain PyTorch loop  {total:7.3f} s/epoch  ({parts})")
        rest = max(0.0, epoch - total)
        print(
            f"  nasorch trial       {epoch:7.3f} s/epoch  (report, checkpoint, records: {rest:.3f})"
        )
        print(f"  ratio plain/nasorch {total / epoch:7.3f}  (target >= 0.9)")
        if not torch.cuda.is_available():
            print("CUDA: no GPU here; the GPU part did not run")
            return
        for line in gpu_lines(gpu_rows(data, folder, split, args.epochs), n_train):
            print(line)


if __name__ == "__main__":
    main()
