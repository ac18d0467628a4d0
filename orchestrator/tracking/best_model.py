"""Logs the best trial's network, rebuilt from its last checkpoint, as an MLflow PyTorch model.

The trainable says how to rebuild it (`best_model(folder, arch, space, options) -> (model,
input example)`, see trainables/torch_loop.py); a trainable without one logs no model. One that
also has `test_metrics(folder, arch, space, options)` is evaluated once on its held-out test
split: the number to report, since the validation score is the one the search optimised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from orchestrator.core import tags as T
from trainables.storage import filesystem

MODEL_NAME = "best_model"  # the parent run's logged model (runs:/<parent>/best_model)


def warm_up() -> None:
    """Save a tiny model once, to a temporary folder: what saving a model costs the first time
    (torch.export's tracing, MLflow's map of installed packages: seconds) is then paid while Ray
    starts, not at the search's end."""
    import tempfile

    import mlflow.pytorch
    import numpy as np
    import torch

    with tempfile.TemporaryDirectory() as folder:
        mlflow.pytorch.save_model(
            torch.nn.Linear(2, 2),
            path=f"{folder}/model",
            input_example=np.zeros((1, 2), dtype=np.float32),
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )


def log_best_model(
    tracking: Any,
    rebuild: Callable,
    space: Any,
    best: dict,
    options: dict[str, Any],
    test: Callable | None = None,
    register_as: str | None = None,
) -> dict[str, float]:
    """Log the best model on the parent run; with `test` (the trainable's `test_metrics`), also
    its metrics on the held-out test split, once, as `best_test_<name>`. With `register_as`, a
    new version of that registered model (input example and signature included, so `mlflow
    models serve -m models:/<name>/<version>` serves it). Returns the test scores."""
    import mlflow
    import mlflow.pytorch
    import torch
    from ray.tune import Checkpoint

    arch = space.validate(json.loads(best["arch_json"]))
    fs, path = filesystem(best["checkpoint"])  # a folder, or fetched from s3://...?endpoint=...
    with Checkpoint(path, filesystem=fs).as_directory() as folder:
        model, example = rebuild(folder, arch, space, options)
        tested = test(folder, arch, space, options) if test is not None else {}
    scores = {f"best_test_{k}": float(v) for k, v in tested.items()}
    mlflow.set_tracking_uri(tracking.uri)
    # A driver killed after logging it, then resumed, logs it again: the new one replaces it.
    client = mlflow.MlflowClient(tracking.uri)
    query = f"source_run_id = '{tracking.parent_run_id}' AND name = '{MODEL_NAME}'"
    for earlier in client.search_logged_models([tracking.experiment_id], filter_string=query):
        client.delete_logged_model(earlier.model_id)
    with mlflow.start_run(run_id=tracking.parent_run_id):
        mlflow.pytorch.log_model(
            model,
            name=MODEL_NAME,
            input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            tags={T.MODEL_TRIAL: best["trial"], T.ARCH: best["arch"]},
            registered_model_name=register_as,
        )
        if scores:
            mlflow.log_metrics(scores)
    return scores
