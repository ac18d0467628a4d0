"""Paths as users write them: a config file's are relative to its folder, the command line's and
the Python API's to the working folder, and the driver makes them absolute before the first
trial (Ray runs each trial in a folder of its own). A search in which no trial produced a result
fails in one line; the progress line under a time budget shows the time left, and the final
lines the held-out test score."""

from __future__ import annotations

import io
import os

import pandas as pd
import pytest
import yaml

import orchestrator
from orchestrator.commands.cli import main
from orchestrator.config import parse_config
from tests import data_files as gen


def write_project(root):
    """A user's folder: cfg.yaml next to data/train.csv and data/test.csv, paths relative."""
    (root / "data").mkdir(parents=True)
    gen.table(90, seed=0).to_csv(root / "data" / "train.csv", index=False)
    gen.table(30, seed=1).to_csv(root / "data" / "test.csv", index=False)
    config = {
        "name": "relative",
        "num_samples": 1,
        "max_concurrent_trials": 1,
        "search_space": {"name": "mlp", "options": {"max_depth": 1, "widths": [8]}},
        "trainable": {
            "name": "torch",
            "options": {
                "epochs": 1,
                "dataset": {"format": "csv", "path": "data/train.csv", "target": "label"},
            },
        },
        "tracking": {"uri": f"sqlite:///{root.parent}/mlflow.db"},
    }
    (root / "cfg.yaml").write_text(yaml.safe_dump(config))
    return root / "cfg.yaml"


# ---- unit tier ------------------------------------------------------------------------------


def test_a_config_files_paths_are_relative_to_its_folder(tmp_path, monkeypatch):
    cfg_file = write_project(tmp_path / "project")
    monkeypatch.chdir(tmp_path)  # somewhere else
    cfg = parse_config(cfg_file, ["trainable.options.dataset.test=elsewhere/test.csv"])
    dataset = cfg.trainable.options["dataset"]
    assert dataset["path"] == str(tmp_path / "project" / "data" / "train.csv")
    # --set is typed in the working folder: relative to it
    assert dataset["test"] == str(tmp_path / "elsewhere" / "test.csv")


def test_the_apis_paths_are_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = {
        "name": "api",
        "search_space": {"name": "table", "options": {"path": "curves.csv"}},
        "trainable": {
            "name": "torch",
            "options": {
                "dataset": {
                    "format": "csv",
                    "path": "./t.csv",
                    "test": 0.2,  # a fraction, not a path
                    "data_dir": "~/.cache/x",  # each node's own home
                }
            },
        },
    }
    cfg = parse_config(data)
    dataset = cfg.trainable.options["dataset"]
    assert dataset["path"] == str(tmp_path / "t.csv")
    assert dataset["test"] == 0.2 and dataset["data_dir"] == "~/.cache/x"
    assert cfg.search_space.options["path"] == str(tmp_path / "curves.csv")
    assert data["trainable"]["options"]["dataset"]["path"] == "./t.csv"  # the caller's dict kept


def test_uris_and_absolute_paths_are_left_as_written(tmp_path):
    uri = "s3://bucket/data/train.csv?endpoint_override=127.0.0.1:9000&scheme=http"
    data = {
        "name": "uri",
        "search_space": {"name": "nb201"},
        "trainable": {"name": "tabular", "options": {"table": "/abs/table.csv"}},
        "searcher": {"name": "darts", "options": {"dataset": {"format": "csv", "path": uri}}},
    }
    cfg = parse_config(data)
    assert cfg.trainable.options["table"] == "/abs/table.csv"
    assert cfg.searcher.options["dataset"]["path"] == uri


def test_the_progress_line_under_a_time_budget_shows_the_time_left():
    from orchestrator.execution.budget import TimeBudget
    from orchestrator.execution.progress import Progress
    from orchestrator.resumable import restored

    restored.clear()
    budget = TimeBudget(125.0)
    shown = Progress("val_accuracy", "max", total=10_000, stream=io.StringIO())
    try:
        line = shown.line([])
        assert "2m0" in line and "left" in line and "10000" not in line, line
        budget.ended = True
        assert "budget spent" in shown.line([])
    finally:
        restored.clear()
    assert "0/10000 finished" in shown.line([])  # without a budget: the cap of trials


def test_the_final_lines_show_the_held_out_test_score():
    from orchestrator.execution.results import SearchResult, print_summary

    cfg = parse_config({"name": "s", "search_space": {"name": "mlp"}})
    trials = pd.DataFrame(
        [{"trial": "t000", "status": "completed", "val_accuracy": 0.9, "arch": "mlp"}]
    )
    result = SearchResult(
        trials=trials,
        best=trials.iloc[0].to_dict(),
        experiment_path="/x",
        tracking_uri="sqlite:///x.db",
        experiment_id="1",
        parent_run_id="p",
        config=cfg,
        summary={"best_test_accuracy": 0.961, "best_test_loss": 0.2},
    )
    out = io.StringIO()
    print_summary(result, out)
    assert "best_test_accuracy=0.9610" in out.getvalue()


# ---- integration tier: searches on the shared local Ray --------------------------------------


def test_nasorch_run_from_the_configs_folder_and_from_another(ray_local, tmp_path, monkeypatch):
    cfg_file = write_project(tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    assert main(["run", "cfg.yaml", "--quiet"]) == 0
    monkeypatch.chdir(tmp_path)
    # the test file on the command line: relative to this folder
    extra = ["--set", "trainable.options.dataset.test=project/data/test.csv", "--quiet"]
    assert main(["run", os.path.relpath(cfg_file), *extra]) == 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("relative").experiment_id])
    parents = [r for r in runs if r.data.tags.get("nasorch.role") == "search"]
    assert len(parents) == 2
    for parent in parents:
        assert parent.info.status == "FINISHED"
        assert parent.data.metrics["trials_completed"] == 1
        assert "best_test_val_accuracy" in parent.data.metrics


def test_nasorch_search_and_the_api_with_relative_data(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    gen.write_csv(tmp_path)  # table.csv
    # A budget a loaded machine cannot spend before the first trial reports; the search ends
    # sooner, at its first few trials (what is tested is that they find their data).
    words = ["search", "table.csv", "--target", "label", "--budget", "120s", "--epochs", "1",
             "--set", "num_samples=2"]  # fmt: skip
    assert main(words) == 0
    out = capsys.readouterr().out
    assert "best_test_val_accuracy=" in out
    gen.write_image_folder(tmp_path)  # pictures/
    result = orchestrator.search(
        data="pictures", budget="120s", epochs=1, progress=False,
        overrides=["trainable.options.dataset.image_size=8", "num_samples=2"],
    )  # fmt: skip
    assert result.best is not None and (result.trials["status"] != "errored").all()


def test_a_search_in_which_no_trial_produced_a_result_exits_non_zero(
    ray_local, tmp_path, monkeypatch, capsys
):
    cfg_file = write_project(tmp_path / "project")
    config = yaml.safe_load(cfg_file.read_text())
    config["name"] = "no-result"
    config["num_samples"] = 2
    config["trainable"] = {"name": "tests.helpers:fails"}
    cfg_file.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(cfg_file), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("nasorch: error: no trial produced val_accuracy: 2 of 2"), err
    assert "boom: this trial always fails" in err[-1] and "(log: " in err[-1]


@pytest.fixture(autouse=True)
def _no_tracking_env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
