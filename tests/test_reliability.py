"""Failures, concurrent logging and secrets: the records stay complete and safe."""

from __future__ import annotations

import json

import pytest
import yaml
from mlflow.tracking import MlflowClient

import orchestrator
from orchestrator.commands.cli import main

FLOAT_X = {"name": "custom", "options": {"params": {"x": {"type": "float", "low": 0, "high": 1}}}}


def test_too_many_failures_in_a_row_stop_the_search(ray_local, workdir, capsys):
    path = workdir / "c.yaml"
    config = {
        "name": "failing-in-a-row",
        "metric": "score",
        "num_samples": 12,
        "max_concurrent_trials": 1,
        "max_consecutive_failures": 2,
        "search_space": FLOAT_X,
        "trainable": {"name": "tests.helpers:fails"},
    }
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the search stopped: 2 trials in a row failed" in err
    assert "boom: this trial always fails" in err
    client = MlflowClient(f"sqlite:///{workdir}/nasorch_results/mlflow.db")
    exp = client.get_experiment_by_name("failing-in-a-row")
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if r.data.tags["nasorch.role"] == "trial"]
    assert len(trials) == 2  # it stopped instead of burning all 12
    assert all(r.data.tags["nasorch.status"] == "errored" for r in trials)
    parent = next(r for r in runs if r.data.tags["nasorch.role"] == "search")
    assert parent.info.status == "FAILED"


def test_every_metric_point_arrives_on_sqlite(ray_local, workdir):
    """N concurrent trials x E reports = exactly N x E points, no 'database is locked' losses."""
    n = 6
    result = orchestrator.run(
        {
            "name": "counting",
            "metric": "score",
            "num_samples": n,
            "max_concurrent_trials": 2,
            "search_space": FLOAT_X,
            "trainable": {"name": "tests.helpers:many_reports"},
        },
        progress=False,
    )
    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs(
        [result.experiment_id], "tags.`nasorch.role` = 'trial'", max_results=100
    )
    assert len(runs) == n
    points = [len(client.get_metric_history(r.info.run_id, "score")) for r in runs]
    assert points == [25] * n


def test_secrets_are_masked_in_every_record(ray_local, workdir):
    result = orchestrator.run(
        {
            "name": "secrets",
            "metric": "score",
            "num_samples": 1,
            "search_space": FLOAT_X,
            "trainable": {
                "name": "tests.helpers:many_reports",
                "options": {"api_token": "hunter2", "db_password": "hunter3", "batch": 3},
            },
        },
        progress=False,
    )
    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs([result.experiment_id])
    for run in runs:
        assert "hunter2" not in str(run.data.params) and "hunter3" not in str(run.data.params)
    parent = next(r for r in runs if r.data.tags["nasorch.role"] == "search")
    text = client.download_artifacts(parent.info.run_id, "config.yaml", str(workdir))
    config = open(text).read()
    assert "hunter" not in config and "api_token: '***'" in config
    child = next(r for r in runs if r.data.tags["nasorch.role"] == "trial")
    assert child.data.params["trainable.api_token"] == "***"
    assert child.data.params["trainable.batch"] == "3"


@pytest.mark.parametrize("name", ["state.json"])
def test_state_files_are_written_atomically(tmp_path, name, monkeypatch):
    """A crash while writing leaves the previous file intact."""
    import json
    import os

    from orchestrator.core.jsonio import write_json_atomic

    path = tmp_path / name
    write_json_atomic(path, {"v": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left behind


def test_resume_backfill_reads_rays_staging_folder_too(tmp_path, monkeypatch):
    """Ray writes result.json into its session's staging folder and copies it next to the
    experiment only now and then: after a SIGKILL the newest results are only in the former."""
    from orchestrator.resumable.recovery import unrecorded_results

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "tmp"))
    experiment = tmp_path / "results" / "search-20261125-120000"

    def results(folder, steps):
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps({"trial_id": "a", "training_iteration": s, "timestamp": 100 + s, "x": s})
            for s in steps
        ]
        (folder / "result.json").write_text("\n".join(lines) + "\n{torn")

    results(experiment / "t001_a", [1, 2])  # the copy next to the experiment: behind
    staging = "session_2026/artifacts/2026-11-25_12-00-00/search-20261125-120000/driver_artifacts"
    results(tmp_path / "tmp" / "ray" / staging / "t001_a", [1, 2, 3, 4])
    other = "session_2026/artifacts/2026-11-25_12-00-00/another-20261125-120000/driver_artifacts"
    results(tmp_path / "tmp" / "ray" / other / "t001_a", [5])  # another search: not read
    backlog = unrecorded_results(str(experiment), {"a": 1})
    assert [r["training_iteration"] for r in backlog["a"]] == [2, 3, 4]
