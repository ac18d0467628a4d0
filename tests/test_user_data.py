"""A search end to end on each data format, from files generated here: trials train through
Ray with the recipe options, and the best model's score on the held-out test split is on the
parent run (`best_test_<metric>`)."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

import orchestrator
from tests import data_files as gen

SPACES = {
    "image": {
        "name": "conv",
        "options": {"max_stages": 1, "max_blocks": 1, "channels": [4], "kernels": [3]},
    },
    "flat": {"name": "mlp", "options": {"max_depth": 1, "widths": [16]}},
    "sequence": {"name": "recurrent", "options": {"max_layers": 1, "hidden_sizes": [8]}},
}


def dataset(fmt: str, tmp) -> tuple[dict, str]:
    if fmt == "npz":
        return {"format": "npz", "path": str(gen.write_npz(tmp))}, "image"
    if fmt == "csv":
        return {"format": "csv", "path": str(gen.write_csv(tmp))}, "flat"
    if fmt == "parquet":
        return {"format": "parquet", "path": str(gen.write_parquet(tmp))}, "flat"
    return {"format": "text", "path": str(gen.write_text(tmp)), "max_length": 12}, "sequence"


# image_folder end to end: test_auto.py; torchvision (CIFAR-10's files): the nb201 example below
@pytest.mark.parametrize("fmt", ["npz", "csv", "parquet", "text"])
def test_a_search_on_each_format(ray_local, tmp_path, fmt):
    data, layout = dataset(fmt, tmp_path)
    options = {"dataset": data, "epochs": 2, "batch_size": 16, "lr": 0.01}
    if layout == "image":  # the recipe a CIFAR search uses
        options.update(optimizer="sgd", nesterov=True, schedule="cosine", augment=True,
                       label_smoothing=0.1, grad_clip=5.0, weight_decay=5e-4)  # fmt: skip
    cfg = {
        "name": f"data-{fmt.replace('_', '-')}",
        "num_samples": 1,
        "seed": 0,
        "search_space": SPACES[layout],
        "trainable": {"name": "torch", "options": options},
        "searcher": {"name": "random"},
        "storage_path": str(tmp_path / "ray"),
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"},
    }
    if fmt == "csv":  # the best model also goes to the model registry
        cfg["tracking"]["register_model"] = "churn-classifier"
    result = orchestrator.run(cfg, progress=False)
    assert len(result.trials) == 1 and set(result.trials["status"]) == {"completed"}
    parent = MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    test_accuracy = parent.data.metrics["best_test_val_accuracy"]
    assert 0.0 <= test_accuracy <= 1.0 and "best_test_val_loss" in parent.data.metrics
    assert result.summary["best_test_val_accuracy"] == test_accuracy
    if fmt == "csv":
        client = MlflowClient(result.tracking_uri)
        (version,) = client.search_model_versions("name='churn-classifier'")
        assert version.run_id == result.parent_run_id and int(version.version) == 1


def test_your_model_in_our_loop(ray_local, tmp_path):
    """examples/own_model.yaml: the builder in the .py next to the YAML (no PYTHONPATH) builds
    every trial's network on the workers, the gate costs that network, and the best one is the
    logged model."""
    import importlib.util
    import shutil

    import mlflow.pytorch
    import torch

    from tests.conftest import ROOT

    for name in ("own_model.yaml", "own_model.py"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    overrides = [
        "num_samples=2",
        "scheduler.name=fifo",
        "scheduler.options={}",
        "trainable.options.epochs=2",
        f"storage_path={tmp_path / 'ray'}",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
    ]
    result = orchestrator.run(tmp_path / "own_model.yaml", overrides=overrides, progress=False)
    assert len(result.trials) == 2 and set(result.trials["status"]) == {"completed"}

    spec = importlib.util.spec_from_file_location("own_model_copy", tmp_path / "own_model.py")
    own = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(own)
    for _, row in result.trials.iterrows():  # trained and costed (the gate's flops) as built
        network = own.build(json.loads(row["arch_json"]), (1, 8, 8), 10)
        assert row["num_params"] == sum(p.numel() for p in network.parameters())
        assert row["flops"] > 0

    model = mlflow.pytorch.load_model(f"runs:/{result.parent_run_id}/best_model")
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_the_nb201_cifar10_example_runs_on_a_tiny_cifar(ray_local, tmp_path):
    """examples/nb201_cifar10.yaml as the cluster runs it, on generated files in CIFAR-10's
    layout, one epoch, no GPU: the recipe, the nb201 builder and the test split together."""
    from tests.conftest import ROOT

    cache = gen.write_cifar10(tmp_path / "cache")
    overrides = [
        "num_samples=1", "max_concurrent_trials=1", "resources.gpu=0", "resources.cpu=1",
        "search_space.options.C=4", "search_space.options.N=1", "trainable.options.epochs=1",
        "trainable.options.batch_size=32", f"trainable.options.dataset.data_dir={cache}",
        "scheduler.name=fifo", "scheduler.options={}",
        f"storage_path={tmp_path / 'ray'}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
    ]  # fmt: skip
    result = orchestrator.run(
        ROOT / "examples" / "nb201_cifar10.yaml", overrides=overrides, progress=False
    )
    assert list(result.trials["status"]) == ["completed"]
    assert "best_test_val_accuracy" in result.summary


def test_a_custom_loop_through_the_trial_api(ray_local, tmp_path):
    """examples/custom_loop.yaml: a user's loop reporting through `orchestrator.trial`, its
    checkpoints in nasorch's format (the SIGKILL and resume of it: tests/test_resume_schedulers)."""
    import shutil

    import torch

    from tests.conftest import ROOT

    for name in ("custom_loop.yaml", "custom_loop.py"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    overrides = [
        "num_samples=2", "scheduler.name=fifo", "scheduler.options={}",
        "trainable.options.epochs=2", f"storage_path={tmp_path / 'ray'}",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
    ]  # fmt: skip
    result = orchestrator.run(tmp_path / "custom_loop.yaml", overrides=overrides, progress=False)
    assert list(result.trials["status"]) == ["completed", "completed"]
    state = torch.load(f"{result.best['checkpoint']}/state.pt")  # what trial.restore reads
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler"} <= set(state)
