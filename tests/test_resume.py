"""A search whose driver is killed (SIGKILL) resumes: no trial lost or doubled, the same runs
continue in MLflow, and the searcher goes on exactly as an uninterrupted run would."""

from __future__ import annotations

import json
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

from tests.conftest import ROOT
from tests.helpers import require
from tests.helpers_procs import BIN, ProcessGroups, free_ports, kill_tree, port_open, wait_for

pytestmark = pytest.mark.integration
N = 6


def config(tmp: Path, name: str) -> dict:
    return {
        "name": name,
        "metric": "score",
        "num_samples": N,
        "max_concurrent_trials": 2,
        "seed": 7,
        "search_space": {
            "name": "custom",
            "options": {"params": {"x": {"type": "float", "low": 0, "high": 1}}},
        },
        "trainable": {"name": "tests.helpers:slow_epochs"},
        "searcher": {"name": "random"},
        "storage_path": str(tmp / "ray"),
        "tracking": {"uri": f"sqlite:///{tmp}/mlflow.db"},
    }


def nasorch(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.commands.cli", *args],
        cwd=kwargs.get("cwd"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip


def trials_by_number(client: MlflowClient, experiment: str) -> dict[int, list]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`nasorch.role` = 'trial'", max_results=500)
    out: dict[int, list] = {}
    for r in runs:
        out.setdefault(int(r.data.tags["nasorch.trial_number"]), []).append(r)
    return out


def crash_and_resume(
    tmp_path: Path,
    started: list,
    name: str,
    ready,
    local: Path | None = None,
    before_resume=lambda: None,
) -> str:
    """Run config `name`.yaml, SIGKILL its driver once `ready(steps)` holds for the epochs
    recorded so far (trial id -> last epoch), call `before_resume()`, resume it, and return the
    resumed run's output.
    nasorch's own files are under `local` (default: the config's storage folder)."""
    local = local or tmp_path / "ray"
    driver = nasorch("run", f"{name}.yaml", "--quiet", cwd=tmp_path)
    started.append(driver)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        state = next(local.glob(f"{name}-*/nasorch_state.json"), None)
        if state is not None and ready(json.loads(state.read_text()).get("steps", {})):
            break
        assert driver.poll() is None, driver.stdout.read()
    else:
        pytest.fail("the search did not get going in time")
    kill_tree(driver)
    folder = next(local.glob(f"{name}-*"))
    before_resume()
    resumed = nasorch("resume", str(folder), "--quiet", cwd=tmp_path)
    started.append(resumed)
    try:
        out, _ = resumed.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.kill(resumed.pid, signal.SIGUSR2)  # the CLI prints every thread's stack (faulthandler)
        time.sleep(3)
        kill_tree(resumed)
        out, _ = resumed.communicate()
        pytest.fail(f"nasorch resume did not end in 300 s; its output:\n{out[-20000:]}")
    assert resumed.returncode == 0, out
    return out


@pytest.fixture
def started():
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:  # whatever the outcome, nothing is left running
        if p.poll() is None:
            kill_tree(p)


def test_sigkill_then_resume(tmp_path, started):
    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(config(tmp_path, "crash")))
    (tmp_path / "whole.yaml").write_text(yaml.safe_dump(config(tmp_path, "whole")))

    db = tmp_path / "mlflow.db"
    # killed once a few trials have finished all epochs
    crash_and_resume(
        tmp_path, started, "crash", lambda steps: sum(s == 3 for s in steps.values()) >= 3
    )
    folder = next((tmp_path / "ray").glob("crash-*"))

    whole = nasorch("run", "whole.yaml", "--quiet", cwd=tmp_path)
    started.append(whole)
    out_whole, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, out_whole

    client = MlflowClient(f"sqlite:///{db}")
    crashed, reference = trials_by_number(client, "crash"), trials_by_number(client, "whole")
    assert sorted(crashed) == list(range(1, N + 1))  # exactly num_samples trials
    for number, runs in crashed.items():
        assert len(runs) == 1, f"trial {number} has {len(runs)} child runs"
        run = runs[0]
        assert run.info.status == "FINISHED"
        assert run.data.tags["nasorch.status"] == "completed"
        history = client.get_metric_history(run.info.run_id, "score")
        assert sorted(m.step for m in history) == [1, 2, 3]  # no epoch recorded twice
        # the searcher continued as if nothing had happened
        ref = reference[number][0]
        assert json.loads(run.data.tags["nasorch.arch"]) == json.loads(
            ref.data.tags["nasorch.arch"]
        )
    parents = client.search_runs(
        [client.get_experiment_by_name("crash").experiment_id], "tags.`nasorch.role` = 'search'"
    )
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["trials_completed"] == N
    assert "nasorch.resumed" in parents[0].data.tags

    again = nasorch("resume", str(folder), cwd=tmp_path)
    started.append(again)
    out_again, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and "already finished" in out_again


@pytest.fixture
def s3_server(monkeypatch):
    """A real S3-compatible server on loopback (moto's server mode) with a bucket `nasorch`, and
    credentials for it in the environment the drivers inherit."""
    boto3 = require("boto3")
    (port,) = free_ports(1)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with ProcessGroups() as groups, tempfile.TemporaryDirectory() as logs:
        log = Path(logs, "moto.log")
        cmd = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        groups.start(cmd, log)
        wait_for(lambda: port_open(port), "the S3 server", 60, [log])
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="nasorch")
        yield f"127.0.0.1:{port}"


def test_sigkill_then_resume_on_s3_storage(tmp_path, started, s3_server):
    """storage_path on an S3-compatible server (MinIO, on-prem S3: the cluster's set-up): the
    resumed search reaches the same server (its URI and query survive whole), not real AWS."""
    cfg = config(tmp_path, "s3")
    cfg["num_samples"] = 4
    cfg["storage_path"] = f"s3://nasorch/ray?endpoint_override={s3_server}&scheme=http"
    (tmp_path / "s3.yaml").write_text(yaml.safe_dump(cfg))
    local = tmp_path / "nasorch_results" / "ray"  # nasorch's own files stay on the driver's disk
    crash_and_resume(
        tmp_path, started, "s3", lambda steps: sum(s == 3 for s in steps.values()) >= 2, local
    )
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    trials = trials_by_number(client, "s3")
    # Ray uploads its snapshot file by file: a kill mid-upload can leave S3 with a searcher
    # newer than the trial list, and the trial it suggested last is then suggested again under
    # the next number. Its first run is closed as superseded (KILLED, never RUNNING); exactly
    # num_samples trials count, each in one finished run.
    superseded = {
        number: [r for r in runs if r.data.tags.get("nasorch.status") == "superseded"]
        for number, runs in trials.items()
    }
    for number, runs in superseded.items():
        assert all(r.info.status == "KILLED" for r in runs), number
        trials[number] = [r for r in trials[number] if r not in runs]
    trials = {number: runs for number, runs in trials.items() if runs}
    assert len(trials) == 4 and sum(map(len, superseded.values())) <= 1, sorted(trials)
    for number, runs in trials.items():
        assert len(runs) == 1, f"trial {number} has {len(runs)} child runs"
        tags = {k: v for k, v in runs[0].data.tags.items() if k.startswith("nasorch.")}
        assert runs[0].info.status == "FINISHED", (tags, runs[0].info.status)
        steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "score")]
        assert sorted(steps) == [1, 2, 3]


def test_a_results_trial_id_comes_from_its_folder():
    from types import SimpleNamespace

    from orchestrator.execution.results import result_trial_id

    exploited = SimpleNamespace(path="/r/pbt-1/t006_77ca5485", metrics={"trial_id": "019cd48c"})
    assert result_trial_id(exploited) == "77ca5485"
    never_reported = SimpleNamespace(path="/r/pbt-1/t002_b31eec1c", metrics={})
    assert result_trial_id(never_reported) == "b31eec1c"
