"""The `torch` trainable: builds the trial's network, trains it epoch by epoch on a shipped
dataset, reports validation metrics every epoch and checkpoints model + optimizer every epoch,
so a paused, exploited or retried trial continues where it stopped.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TorchOptions(BaseModel):
    """`trainable.options` for the torch trainable."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["digits", "wine", "breast_cancer"] = "digits"
    epochs: int = Field(10, ge=1, le=10_000)
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    # Used when the architecture does not carry its own value.
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(64, ge=1)
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    threads: int = Field(1, ge=1, description="torch intra-op threads per trial on CPU")


CHECKPOINT_FILE = "state.pt"  # model, optimizer and epoch, in every checkpoint of a trial


def input_spec(options: dict[str, Any], space: Any) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of the networks this trainable builds: the driver
    costs candidates on it (the gate) before they take a trial slot."""
    from trainables import datasets

    opts = TorchOptions(**options)
    data = datasets.load(opts.dataset, getattr(space, "input_layout", "flat"), opts.val_fraction)
    return data.input_shape, data.num_classes


def best_model(folder: str, arch: dict, space: Any, options: dict[str, Any]) -> tuple[Any, Any]:
    """(the trained network of a checkpoint folder, an input example): what the search logs as
    its best model."""
    import torch

    from trainables import datasets

    opts = TorchOptions(**options)
    data = datasets.load(opts.dataset, getattr(space, "input_layout", "flat"), opts.val_fraction)
    model = space.build_model(arch, data.input_shape, data.num_classes)
    state = torch.load(os.path.join(folder, CHECKPOINT_FILE), map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval(), data.x_val[:4]


def _hyper(config: dict[str, Any], opts: TorchOptions, name: str) -> Any:
    # A hyperparameter may come from the arch (searched), the top of the config (PBT mutates
    # it there) or the trainable's options (fixed), in that order.
    if name in config:
        return config[name]
    return config["arch"].get(name, getattr(opts, name))


def train(config: dict[str, Any]) -> None:
    import numpy as np
    import ray
    import torch
    from ray import tune

    from search_spaces import SEARCH_SPACES
    from trainables import datasets

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
    data = datasets.load(opts.dataset, getattr(space, "input_layout", "flat"), opts.val_fraction)
    model = space.build_model(arch, data.input_shape, data.num_classes).to(device)
    num_params = sum(p.numel() for p in model.parameters())
    if "dropout" in config:  # PBT mutates it at the top of the config; the arch's is built in
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = float(config["dropout"])

    lr = float(_hyper(config, opts, "lr"))
    wd = float(_hyper(config, opts, "weight_decay"))
    batch_size = int(_hyper(config, opts, "batch_size"))
    if opts.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=opts.momentum, weight_decay=wd
        )
    else:
        cls = torch.optim.Adam if opts.optimizer == "adam" else torch.optim.AdamW
        optimizer = cls(model.parameters(), lr=lr, weight_decay=wd)

    start_epoch = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = torch.load(
                os.path.join(d, CHECKPOINT_FILE), map_location=device, weights_only=True
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
        for group in optimizer.param_groups:  # a PBT mutation may have changed these
            group["lr"], group["weight_decay"] = lr, wd

    x_tr = torch.from_numpy(data.x_train).to(device)
    y_tr = torch.from_numpy(data.y_train).to(device)
    x_va = torch.from_numpy(data.x_val).to(device)
    y_va = torch.from_numpy(data.y_val).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    for epoch in range(start_epoch + 1, opts.epochs + 1):
        # The shuffle depends on (seed, epoch) only, so a resumed trial sees the same batches.
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(x_tr)))
        model.train()
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size].to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(x_va)
            val_loss = loss_fn(logits, y_va).item()
            val_acc = (logits.argmax(1) == y_va).float().mean().item()
        metrics = {
            "epoch": epoch,
            "val_accuracy": val_acc,
            "val_loss": val_loss,
            "train_loss": total / len(x_tr),
            "num_params": num_params,
            "node_id": node_id,
        }
        with tempfile.TemporaryDirectory() as d:
            torch.save(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
                os.path.join(d, CHECKPOINT_FILE),
            )
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


# What the orchestrator may ask of a trainable, beyond running it (each optional):
train.Options = TorchOptions  # validates trainable.options once, when the config is built
train.input_spec = input_spec  # lets the gate cost a candidate's network on the driver
train.best_model = best_model  # rebuilds the best trial's network from its checkpoint
