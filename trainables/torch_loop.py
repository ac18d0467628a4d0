"""The `torch` trainable: builds the trial's network, trains it epoch by epoch on a shipped
dataset, reports validation metrics every epoch and checkpoints model + optimizer every epoch,
so a paused, exploited or retried trial continues where it stopped.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trainables.data_files import DatasetSpec

SHIPPED = ("digits", "wine", "breast_cancer")


class TorchOptions(BaseModel):
    """`trainable.options` for the torch trainable."""

    model_config = ConfigDict(extra="forbid")

    dataset: Any = Field("digits", description="a shipped name, or a mapping (your data)")
    epochs: int = Field(10, ge=1, le=10_000)
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="shipped datasets")
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    # Used when the architecture does not carry its own value.
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(64, ge=1)
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    schedule: Literal["constant", "cosine", "step"] = "constant"
    warmup_epochs: int = Field(0, ge=0)
    step_epochs: int = Field(30, ge=1, description="schedule: step: every so many epochs")
    step_gamma: float = Field(0.1, gt=0.0, le=1.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0, description="max gradient norm")
    augment: bool = Field(False, description="images: random crop (pad 4) and flip")
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="mixed precision on CUDA")
    channels_last: bool = False
    compile: bool = Field(False, description="torch.compile, where it works")
    embed_dim: int = Field(64, ge=1, description="text: token embedding size")
    model: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function building the network: build(arch, input_shape, classes)",
    )
    input_layout: Literal["flat", "image", "sequence"] | None = Field(
        None, description="what the network takes; default: the search space's layout"
    )
    threads: int = Field(1, ge=1, description="torch intra-op threads per trial on CPU")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: Any) -> str | DatasetSpec:
        if isinstance(value, str):
            if value not in SHIPPED:
                raise ValueError(
                    f"{value!r} is not one of {', '.join(SHIPPED)}, nor a mapping (format, path)"
                )
            return value
        if isinstance(value, DatasetSpec):
            return value
        if not isinstance(value, dict):
            raise ValueError("a shipped name or a mapping such as {format: csv, path: ...}")
        try:
            return DatasetSpec(**value)
        except ValidationError as e:  # the first problem, named by its key in the mapping
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{where}: {message}" if where else message) from None


CHECKPOINT_FILE = "state.pt"  # model, optimizer, scaler and epoch, in every checkpoint


def load_state(map_location: Any, **load_options: Any) -> dict | None:
    """The trial's last checkpoint as `report_state` saved it, or None: a trial that starts
    afresh, or one whose checkpoint is gone (removed after the snapshot that names it). The
    torch loop and `orchestrator.trial` (a user's own loop) share this format."""
    import torch
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    try:
        with checkpoint.as_directory() as d:
            path = os.path.join(d, CHECKPOINT_FILE)
            return torch.load(path, map_location=map_location, **load_options)
    except FileNotFoundError as e:
        print(f"nasorch: checkpoint {checkpoint.path} is gone ({e}); the trial starts afresh")
        return None


def report_state(metrics: dict[str, Any], state: dict[str, Any]) -> None:
    """Report one epoch's metrics with `state` saved as the trial's checkpoint."""
    import torch
    from ray import tune

    with tempfile.TemporaryDirectory() as d:
        torch.save(state, os.path.join(d, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def _data(opts: TorchOptions, space: Any) -> Any:
    from trainables import datasets

    layout = opts.input_layout or getattr(space, "input_layout", "flat")
    return datasets.load(opts.dataset, layout, opts.val_fraction)


def _space_input(data: Any, opts: TorchOptions) -> tuple[int, ...]:
    """What the space's network takes: token ids are embedded first (embed_dim per token)."""
    return (*data.input_shape, opts.embed_dim) if data.vocab_size else data.input_shape


def _network(space: Any, arch: dict, data: Any, opts: TorchOptions, build: Any = None) -> Any:
    """The trial's network: the user's builder (`model`: handed over by Ray on a worker,
    imported by name on the driver, which imported it when the config was built) or the
    space's own."""
    import importlib

    import torch

    if build is None and opts.model:
        module, _, name = opts.model.partition(":")
        build = getattr(importlib.import_module(module), name)
    build = build or space.build_model
    model = build(arch, _space_input(data, opts), data.num_classes)
    if data.vocab_size:
        embed = torch.nn.Embedding(data.vocab_size, opts.embed_dim, padding_idx=0)
        model = torch.nn.Sequential(embed, model)
    return model


def input_spec(options: dict[str, Any], space: Any) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of the networks this trainable builds: the driver
    costs candidates on it (the gate) before they take a trial slot (text: after the
    embedding, which every candidate shares)."""
    from trainables import datasets

    opts = TorchOptions(**options)
    layout = opts.input_layout or getattr(space, "input_layout", "flat")
    known = datasets.known_spec(opts.dataset, layout)
    if known is not None:
        return known
    data = _data(opts, space)
    return _space_input(data, opts), data.num_classes


def best_model(folder: str, arch: dict, space: Any, options: dict[str, Any]) -> tuple[Any, Any]:
    """(the trained network of a checkpoint folder, an input example): what the search logs as
    its best model."""
    import torch

    opts = TorchOptions(**options)
    data = _data(opts, space)
    model = _network(space, arch, data, opts)
    state = torch.load(os.path.join(folder, CHECKPOINT_FILE), map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval(), data.x_val[:4]


def test_metrics(folder: str, arch: dict, space: Any, options: dict[str, Any]) -> dict:
    """The best model's metrics on the held-out test split, which no trial saw (names as in
    the trial's reports); {} when the data has no test split."""
    import torch

    opts = TorchOptions(**options)
    data = _data(opts, space)
    if data.x_test is None:
        return {}
    model, _ = best_model(folder, arch, space, options)
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    loss, acc = _evaluate(model, x, y, torch.nn.CrossEntropyLoss(), opts.batch_size * 4)
    return {"val_accuracy": acc, "val_loss": loss}


def _evaluate(model: Any, x: Any, y: Any, loss_fn: Any, batch: int, ctx: Any = None):
    """(mean loss, accuracy) over (x, y), in batches: a large split need not fit at once."""
    import contextlib

    import torch

    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad(), ctx or contextlib.nullcontext():
        for i in range(0, len(x), batch):
            logits = model(x[i : i + batch]).float()
            total_loss += loss_fn(logits, y[i : i + batch]).item() * len(logits)
            correct += (logits.argmax(1) == y[i : i + batch]).sum().item()
    return total_loss / max(1, len(x)), correct / max(1, len(x))


def _hyper(config: dict[str, Any], opts: TorchOptions, name: str) -> Any:
    # A hyperparameter may come from the arch (searched), the top of the config (PBT mutates
    # it there) or the trainable's options (fixed), in that order.
    if name in config:
        return config[name]
    return config["arch"].get(name, getattr(opts, name))


def train(config: dict[str, Any], model: Any = None) -> None:
    """One trial. `model`: the user's network builder (trainable.options.model), given by the
    runner through `tune.with_parameters`."""
    import numpy as np
    import ray
    import torch

    from search_spaces import SEARCH_SPACES
    from trainables import recipe
    from trainables.device import DeviceMeter

    opts = TorchOptions(**config.get("trainable_options", {}))
    spec = config["search_space"]
    space = SEARCH_SPACES[spec["name"]](**spec.get("options", {}))
    arch = config["arch"]
    seed = int(config.get("seed", 0))

    torch.set_num_threads(opts.threads)
    torch.manual_seed(seed)
    # CUDA only when Ray gave this trial a GPU (CUDA_VISIBLE_DEVICES is set to it).
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    node_id = ray.get_runtime_context().get_node_id()
    data = _data(opts, space)
    build = model
    model = _network(space, arch, data, opts, build).to(device)
    num_params = sum(p.numel() for p in model.parameters())
    if "dropout" in config:  # PBT mutates it at the top of the config; the arch's is built in
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = float(config["dropout"])
    images = data.x_train.ndim == 4
    layout = torch.channels_last if opts.channels_last and images else torch.contiguous_format
    model = model.to(memory_format=layout)

    lr = float(_hyper(config, opts, "lr"))
    wd = float(_hyper(config, opts, "weight_decay"))
    batch_size = int(_hyper(config, opts, "batch_size"))
    optimizer = recipe.optimizer_for(model, opts.optimizer, lr, wd, opts.momentum, opts.nesterov)
    scaler = recipe.grad_scaler(device, opts.amp)

    start_epoch = 0
    state = load_state(map_location=device, weights_only=True)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"])
        for group in optimizer.param_groups:  # a PBT mutation may have changed this
            group["weight_decay"] = wd
    step = _compiled(model) if opts.compile else model

    # On the device once: no per-batch copies (pinned first, so the copy to a GPU is quick).
    def to_device(a: np.ndarray) -> Any:
        t = torch.from_numpy(a)
        if device.type == "cuda":
            t = t.pin_memory()
        t = t.to(device, non_blocking=True)
        return t.contiguous(memory_format=layout) if t.ndim == 4 else t

    x_tr, y_tr = to_device(data.x_train), to_device(data.y_train)
    x_va, y_va = to_device(data.x_val), to_device(data.y_val)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing)
    plain_loss = torch.nn.CrossEntropyLoss()
    meter = DeviceMeter(device)

    for epoch in range(start_epoch + 1, opts.epochs + 1):
        # The epoch's own compute (training + validation; loss.item() syncs the device), not
        # the checkpoint and report around it: benchmarks compare it with supernet seconds.
        began = time.perf_counter()
        factor = recipe.lr_factor(
            epoch, opts.epochs, opts.schedule, opts.warmup_epochs, opts.step_epochs, opts.step_gamma
        )
        for group in optimizer.param_groups:
            group["lr"] = lr * factor
        # The shuffle and augmentation depend on (seed, epoch) only: a resumed trial sees the
        # same batches.
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(x_tr)))
        flips = torch.Generator().manual_seed(seed * 100_003 + epoch)
        model.train()
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size].to(device)
            inputs = x_tr[idx]
            if opts.augment and data.image:
                inputs = recipe.augment(inputs, flips)
            optimizer.zero_grad(set_to_none=True)
            with recipe.autocast(device, opts.amp):
                loss = loss_fn(step(inputs).float(), y_tr[idx])
            scaler.scale(loss).backward()
            if opts.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total += loss.item() * len(idx)
        ctx = recipe.autocast(device, opts.amp)
        val_loss, val_acc = _evaluate(step, x_va, y_va, plain_loss, batch_size * 4, ctx)
        metrics = {
            "epoch": epoch,
            "val_accuracy": val_acc,
            "val_loss": val_loss,
            "train_loss": total / len(x_tr),
            "lr": lr * factor,
            "epoch_seconds": time.perf_counter() - began,
            "num_params": num_params,
            "node_id": node_id,
            **meter.epoch_metrics(),  # device, gpus_given, GPU or CPU utilisation
        }
        report_state(
            metrics,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "epoch": epoch,
            },
        )


def _compiled(model: Any) -> Any:
    """torch.compile where it works (it needs a C compiler on CPU); else the model as is."""
    import torch

    try:
        return torch.compile(model)
    except Exception as e:  # noqa: BLE001
        print(f"nasorch: compile: false for this trial ({str(e).splitlines()[0][:200]})")
        return model


# What the orchestrator may ask of a trainable, beyond running it (each optional):
train.Options = TorchOptions  # validates trainable.options once, when the config is built
train.input_spec = input_spec  # lets the gate cost a candidate's network on the driver
train.best_model = best_model  # rebuilds the best trial's network from its checkpoint
train.test_metrics = test_metrics  # evaluates it once on the held-out test split
