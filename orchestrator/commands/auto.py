"""Hand over data, get the best model: `orchestrator.search(data=..., budget="30m")`.

`auto_config` picks what a user would otherwise write in a config, from the data alone: the
reader (a folder of class folders, a CSV / Parquet table, a text table, NumPy arrays, a
torchvision dataset by name), a space that fits it (conv for images, an MLP for tables, a
recurrent network for text), Optuna's TPE and ASHA. The time budget ends the search; the result
is an ordinary search, recorded in MLflow as usual.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrator.core.errors import UserError

TASKS = ("classify",)
TORCHVISION = ("CIFAR10", "CIFAR100", "MNIST", "FashionMNIST", "SVHN")


def detect(data: str, target: str = "label", text: str = "text") -> dict[str, Any]:
    """The `dataset` mapping for `data`: a path or a torchvision dataset's name."""
    if data in TORCHVISION:
        return {"format": "torchvision", "name": data}
    path = Path(os.path.expanduser(data))
    if path.is_dir():
        return {"format": "image_folder", "path": str(path), "image_size": 32}
    if not path.is_file():
        raise UserError(
            f"data: {data} is neither a file, a folder of class folders, nor one of "
            f"{', '.join(TORCHVISION)}"
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return {"format": "npz", "path": str(path)}
    if suffix in (".csv", ".parquet", ".pq"):
        import pandas as pd

        columns = (
            pd.read_parquet(path).columns
            if suffix != ".csv"
            else pd.read_csv(path, nrows=5).columns
        )
        if target not in columns:
            raise UserError(f"target: {path} has no column {target!r} (columns: {list(columns)})")
        if text in columns and len(columns) == 2:  # a text column and the label: text
            return {"format": "text", "path": str(path), "target": target, "text": text}
        fmt = "csv" if suffix == ".csv" else "parquet"
        return {"format": fmt, "path": str(path), "target": target}
    raise UserError(f"data: {path.name}: not a folder, .csv, .parquet or .npz file")


def auto_config(
    data: str,
    *,
    task: str = "classify",
    budget: str | float = "30m",
    name: str = "auto",
    target: str = "label",
    epochs: int | None = None,
    gpu: float = 0.0,
) -> dict[str, Any]:
    """The config `search` runs (printable, savable as YAML, editable)."""
    if task not in TASKS:
        raise UserError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    dataset = detect(data, target)
    images = dataset["format"] in ("image_folder", "torchvision", "npz")
    if dataset["format"] == "text":
        space: dict[str, Any] = {"name": "recurrent", "options": {}}
    elif images:
        space = {"name": "conv", "options": {}}
    else:
        space = {"name": "mlp", "options": {}}
    options: dict[str, Any] = {"dataset": dataset, "epochs": epochs or (20 if images else 30)}
    if images:  # the CIFAR recipe
        options.update(
            optimizer="sgd", nesterov=True, schedule="cosine", augment=True, weight_decay=5e-4
        )
    if gpu:
        options["amp"] = "bf16"
    return {
        "name": name,
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": 10_000,  # the time budget ends the search
        "max_concurrent_trials": 2 if not gpu else max(1, int(1 / gpu)),
        "time_budget": budget,
        "search_space": space,
        "trainable": {"name": "torch", "options": options},
        "searcher": {"name": "tpe"},
        "scheduler": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3}},
        "resources": {"cpu": 1, "gpu": gpu},
    }


def search(
    data: str,
    *,
    task: str = "classify",
    budget: str | float = "30m",
    progress: bool = True,
    **options: Any,
) -> Any:
    """Search for the best model of `data` within `budget`; returns the SearchResult, whose
    `best_model()` loads the winner from MLflow. `options` go to `auto_config` (name, target,
    epochs, gpu) or, as `overrides=[...]`, to the config it makes."""
    from orchestrator.execution.runner import run

    overrides = options.pop("overrides", None)
    cfg = auto_config(data, task=task, budget=budget, **options)
    return run(cfg, overrides=overrides, progress=progress)


def add_arguments(parser: Any) -> None:
    """`nasorch search DATA --budget 30m`: the three lines as a command."""
    parser.add_argument("data", help="folder of class folders, .csv/.parquet/.npz, or CIFAR10")
    parser.add_argument("--budget", default="30m", help="wall-clock budget: 90s, 30m, 2h")
    parser.add_argument("--task", default="classify", help="what to learn (classify)")
    parser.add_argument("--target", default="label", help="label column of a table")
    parser.add_argument("--epochs", type=int, default=None, help="a trial's full budget")
    parser.add_argument("--gpu", type=float, default=0.0, help="GPU share per trial (0.5)")
    parser.add_argument("--name", default="auto", help="search name (MLflow experiment)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="change the config"
    )
    parser.add_argument(
        "--save-config", default=None, metavar="FILE",
        help="also write the config it picked, to edit and run with `nasorch run`",
    )  # fmt: skip
    parser.add_argument("--address", default=None, help="Ray cluster address")
    parser.add_argument("--quiet", action="store_true", help="no live progress")


def execute(args: Any) -> int:
    import yaml

    from orchestrator.execution.results import print_summary
    from orchestrator.execution.runner import run

    cfg = auto_config(
        args.data, task=args.task, budget=args.budget, name=args.name, target=args.target,
        epochs=args.epochs, gpu=args.gpu,
    )  # fmt: skip
    if args.save_config:
        Path(args.save_config).write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = run(cfg, overrides=args.set, address=args.address, progress=not args.quiet)
    print_summary(result)
    return 0
