"""Logs the best trial's network, rebuilt from its last checkpoint, as an MLflow PyTorch model."""

from __future__ import annotations

import json
import os
from typing import Any


def log_best_model(tracking: Any, cfg: Any, space: Any, best: dict) -> None:
    import mlflow
    import mlflow.pytorch
    import torch

    from trainables import datasets
    from trainables.torch_loop import TorchOptions

    opts = TorchOptions(**cfg.trainable.options)
    data = datasets.load(opts.dataset, getattr(space, "input_layout", "flat"), opts.val_fraction)
    arch = space.validate(json.loads(best["arch_json"]))
    model = space.build_model(arch, data.input_shape, data.num_classes)
    from ray.tune import Checkpoint

    with Checkpoint(best["checkpoint"]).as_directory() as folder:  # local, or fetched from s3://
        path = os.path.join(folder, "state.pt")
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    model.eval()
    example = data.x_val[:4]
    mlflow.set_tracking_uri(tracking.uri)
    with mlflow.start_run(run_id=tracking.parent_run_id):
        mlflow.pytorch.log_model(
            model,
            name="best_model",
            input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            tags={"nasorch.trial": best["trial"], "nasorch.arch": best["arch"]},
        )
