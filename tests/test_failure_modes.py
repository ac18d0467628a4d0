"""What a user meets when a search cannot run or stops early: one line naming the field, exit
status 2, and nothing left behind; whatever ends a search, no run it opened stays RUNNING."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.commands.cli import main
from tests.conftest import ROOT

GOOD = {
    "name": "failure-modes",
    "metric": "score",
    "num_samples": 2,
    "search_space": {"name": "custom", "options": {"params": {"a": ["x", "yy", "zzz"]}}},
    "trainable": {"name": "tests.helpers:noop"},
}


def write_config(folder: Path, **changes) -> str:
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **changes}))
    return str(path)


def one_line_error(capsys, field: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"nasorch: error: {field}"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def runs_of(uri: str, experiment: str = "failure-modes") -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


@pytest.fixture
def read_only_dir():
    """A folder on a read-only file system (a tmpfs mounted read-only: root may write anywhere
    else, so permissions alone cannot make a folder unwritable for the tests)."""
    mount = Path(tempfile.mkdtemp(prefix="nasorch-ro-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        os.rmdir(mount)
        pytest.skip(f"cannot mount a read-only file system here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        os.rmdir(mount)


def test_storage_below_a_regular_file(workdir, capsys):
    (workdir / "a-file").write_text("not a folder")
    config = write_config(workdir, storage_path=str(workdir / "a-file" / "ray"))
    assert main(["run", config]) == 2
    assert "Not a directory" in one_line_error(capsys, "storage_path: ")
    assert runs_of(f"sqlite:///{workdir}/nasorch_results/mlflow.db") == []


def test_storage_on_a_read_only_file_system(workdir, capsys, read_only_dir):
    config = write_config(workdir, storage_path=str(read_only_dir / "ray"))
    assert main(["run", config]) == 2
    assert "Read-only file system" in one_line_error(capsys, "storage_path: ")
    assert runs_of(f"sqlite:///{workdir}/nasorch_results/mlflow.db") == []
    assert not list(workdir.glob("nasorch_results/ray/*"))


def test_sqlite_store_on_a_read_only_file_system(workdir, capsys, read_only_dir):
    config = write_config(workdir, tracking={"uri": f"sqlite:///{read_only_dir}/mlflow.db"})
    began = time.monotonic()
    assert main(["run", config]) == 2
    assert time.monotonic() - began < 30  # not SQLAlchemy's two minutes of retries
    assert "Read-only file system" in one_line_error(capsys, "tracking.uri: ")
    assert not list(workdir.glob("nasorch_results/ray/*"))


@pytest.mark.integration
def test_a_metric_the_trainable_never_reports(ray_local, workdir, capsys):
    config = write_config(workdir, metric="val_acc", num_samples=4)
    assert main(["run", config]) == 2
    err = one_line_error(capsys, "metric: ")
    assert "'val_acc'" in err and "score" in err
    runs = runs_of(f"sqlite:///{workdir}/nasorch_results/mlflow.db")
    assert runs, "the search had started: its records stay, closed"
    assert all(r.info.status != "RUNNING" for r in runs), [r.info.status for r in runs]
    parent = [r for r in runs if r.data.tags["nasorch.role"] == "search"]
    assert [r.info.status for r in parent] == ["FAILED"]
    culprit = [r for r in runs if r.data.tags.get("nasorch.status") == "errored"]
    assert len(culprit) == 1 and "'val_acc'" in culprit[0].data.tags["nasorch.error"]


@pytest.mark.integration
def test_a_trial_no_node_can_hold_fails_at_once(ray_local, workdir, capsys):
    config = write_config(workdir)
    began = time.monotonic()
    assert main(["run", config, "--set", "resources.gpu=1"]) == 2
    assert time.monotonic() - began < 60
    err = one_line_error(capsys, "resources.gpu: ")
    assert "1 GPU" in err and "0 GPU" in err  # what was asked, and what the nodes offer
    assert runs_of(f"sqlite:///{workdir}/nasorch_results/mlflow.db") == []


@pytest.mark.integration
def test_an_interrupted_search_leaves_no_run_running(tmp_path):
    """Ctrl+C (SIGINT) mid-search: the parent and every started trial's run are KILLED; `nasorch
    resume` reopens the unfinished trials' runs and finishes them."""
    config = {
        **GOOD,
        "num_samples": 4,
        "search_space": {
            "name": "custom",
            "options": {"params": {"x": {"type": "float", "low": 0, "high": 1}}},
        },
        "trainable": {"name": "tests.helpers:slow_epochs"},
        "storage_path": str(tmp_path / "ray"),
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    cmd = [sys.executable, "-m", "orchestrator.commands.cli", "run", "c.yaml", "--quiet"]
    driver = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                trials = [r for r in runs_of(uri) if r.data.tags["nasorch.role"] == "trial"]
                if any(r.data.metrics for r in trials):
                    break
            time.sleep(0.3)
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, output[-3000:]
    assert "nasorch resume" in output and "Tuner.restore" not in output, output[-3000:]
    runs = runs_of(uri)
    statuses = {r.info.run_id: r.info.status for r in runs}
    assert "RUNNING" not in statuses.values(), statuses
    cut = [r for r in runs if r.data.tags.get("nasorch.status") == "interrupted"]
    assert cut and all(r.info.status == "KILLED" for r in cut)

    experiment = next((tmp_path / "ray").glob("failure-modes-*"))
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.commands.cli", "resume", str(experiment), "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = runs_of(uri)
    trials = [r for r in runs if r.data.tags["nasorch.role"] == "trial"]
    assert len(trials) == 4
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    assert all(r.data.tags["nasorch.status"] == "completed" for r in trials)


USER_TRAINABLE = """
from ray import tune


def train(config):
    for epoch in range(1, 3):
        tune.report({"score": len(config["arch"]["a"]) * epoch})
"""


@pytest.mark.integration
def test_a_trainable_next_to_the_config_is_found_without_pythonpath(tmp_path):
    """`trainable.name: my_trainable:train` with my_trainable.py beside the config, run from
    another folder and without PYTHONPATH: imported from the config's folder."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "my_nasorch_trainable.py").write_text(USER_TRAINABLE)
    config = {
        **GOOD,
        "trainable": {"name": "my_nasorch_trainable:train"},
        "storage_path": str(tmp_path / "ray"),
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"},
    }
    (project / "c.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.commands.cli",
        "run",
        str(project / "c.yaml"),
        "--quiet",
    ]
    done = subprocess.run(cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Top 2 of 2 trials by score" in done.stdout


def test_a_trainable_in_the_working_folder_is_found(tmp_path, monkeypatch):
    """The other place a user's module is looked for: the folder `nasorch` runs in (the config
    elsewhere, no PYTHONPATH)."""
    from orchestrator.execution.components import import_function, load_config

    work, project = tmp_path / "work", tmp_path / "project"
    work.mkdir(), project.mkdir()
    (work / "nasorch_cwd_trainable.py").write_text("def train(config):\n    return 42\n")
    (project / "c.yaml").write_text(yaml.safe_dump(GOOD))
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))
    cfg = load_config(str(project / "c.yaml"))
    assert cfg.module_dirs() == [str(project), str(work)]
    assert import_function("nasorch_cwd_trainable:train", cfg.module_dirs())({}) == 42


def test_a_missing_user_module_names_where_it_was_looked_for(workdir, capsys):
    config = write_config(workdir, trainable={"name": "no_such_nasorch_module:train"})
    assert main(["run", config]) == 2
    err = one_line_error(capsys, "trainable.name: ")
    assert "no_such_nasorch_module" in err and str(workdir) in err
