"""Your own training loop, checkpointed by nasorch (`orchestrator.trial`): it resumes after a
crash (`nasorch resume`) with no epoch trained twice, is retried from its last checkpoint, and
works with PBT. Run it with `nasorch run examples/custom_loop.yaml`."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from orchestrator import trial
from trainables import datasets


def train(config: dict) -> None:
    arch, options = config["arch"], config["trainable_options"]
    torch.manual_seed(config["seed"])
    data = datasets.load("digits", "flat")
    layers: list[nn.Module] = []
    width = data.input_shape[0]
    for _ in range(arch["depth"]):
        layers += [nn.Linear(width, arch["width"]), nn.ReLU()]
        width = arch["width"]
    model = nn.Sequential(*layers, nn.Linear(width, data.num_classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=arch["lr"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, options["epochs"])

    start = trial.restore(model, optimizer, scheduler=scheduler)  # 0 unless resumed
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_val, y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    for epoch in range(start + 1, options["epochs"] + 1):
        order = torch.from_numpy(np.random.default_rng([config["seed"], epoch]).permutation(len(x)))
        model.train()
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
        trial.report(
            {"val_accuracy": accuracy}, epoch=epoch, model=model, optimizer=optimizer,
            scheduler=scheduler,
        )  # fmt: skip
