"""A search end to end on each data format, from files generated here: trials train through
Ray with the recipe options, and the best model's score on the held-out test split is on the
parent run (`best_test_<metric>`)."""

from __future__ import annotations

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
    if fmt == "image_folder":
        return {"format": "image_folder", "path": str(gen.write_image_folder(tmp)),
                "image_size": 8}, "image"  # fmt: skip
    if fmt == "torchvision":
        cache = gen.write_cifar10(tmp / "cache")
        return {"format": "torchvision", "name": "CIFAR10", "data_dir": str(cache)}, "image"
    return {"format": "text", "path": str(gen.write_text(tmp)), "max_length": 12}, "sequence"


@pytest.mark.parametrize("fmt", ["npz", "csv", "parquet", "image_folder", "torchvision", "text"])
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
    result = orchestrator.run(cfg, progress=False)
    assert len(result.trials) == 1 and set(result.trials["status"]) == {"completed"}
    parent = MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    test_accuracy = parent.data.metrics["best_test_val_accuracy"]
    assert 0.0 <= test_accuracy <= 1.0 and "best_test_val_loss" in parent.data.metrics
    assert result.summary["best_test_val_accuracy"] == test_accuracy
