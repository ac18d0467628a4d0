"""Losing a node mid-search: its trials continue on the remaining node from their checkpoints,
and the search finishes with every trial and every epoch recorded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.helpers_cluster import RENDEZVOUS_ENV, WORKER_RESOURCE
from tests.helpers_procs import (
    ProcessGroups,
    clean_env,
    free_ports,
    join_node,
    nasorch_cmd,
    port_open,
    ray_start,
    tails,
    wait_for,
)

pytestmark = pytest.mark.integration

TRIALS, EPOCHS = 6, 8


def test_trials_of_a_lost_node_finish_on_the_other(request):
    tmp = Path(tempfile.mkdtemp(prefix="nasorch-nl-"))  # short: Ray's socket paths are limited
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    env = clean_env()
    env[RENDEZVOUS_ENV] = str(tmp / "rendezvous")
    # Notice a dead node within seconds rather than Ray's default half minute.
    env.update(RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="3")
    gcs, *ports = free_ports(1 + 12)
    address = f"127.0.0.1:{gcs}"
    logs = [tmp / "head.log", tmp / "worker.log", tmp / "driver.log"]
    config = {
        "name": "node-loss",
        "metric": "score",
        "num_samples": TRIALS,
        "max_concurrent_trials": 2,
        "max_failures": 3,  # a trial killed with its node is retried from its checkpoint
        "search_space": {
            "name": "custom",
            "options": {"params": {"u": {"type": "float", "low": 0, "high": 1}}},
        },
        "trainable": {"name": "tests.helpers_cluster:lasting"},
        "resources": {"cpu": 1},
        "storage_path": str(tmp / "shared"),
        "tracking": {"uri": f"sqlite:///{tmp}/mlflow.db"},
    }
    (tmp / "c.yaml").write_text(yaml.safe_dump(config))
    with ProcessGroups() as groups:
        head = ray_start(ports[:6], "--head", "--port", str(gcs), "--include-dashboard", "false",
                         "--temp-dir", str(tmp / "ray"))  # fmt: skip
        groups.start(head, logs[0], env=env, cwd=tmp)
        wait_for(lambda: port_open(gcs), "the Ray head", 60, logs)
        worker_cmd = ray_start(ports[6:], "--address", address, "--temp-dir", str(tmp / "ray"),
                               "--resources", json.dumps({WORKER_RESOURCE: 1}))  # fmt: skip
        worker = join_node(groups, worker_cmd, logs[1], logs, address=address, env=env, cwd=tmp)

        driver = groups.start(
            nasorch_cmd(tmp / "c.yaml", "--address", address), logs[2], env=env, cwd=tmp
        )
        started = tmp / "rendezvous" / "started"

        def on_worker() -> bool:
            return started.is_dir() and any(p.name.startswith("worker") for p in started.iterdir())

        wait_for(on_worker, "a trial on the second node", 120, logs)
        wait_for(lambda: driver.poll() is not None or _has_epochs(tmp, 2), "epochs", 60, logs)
        os.killpg(worker.pid, signal.SIGKILL)  # the node is gone, with its trial's process
        try:
            driver.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the search did not finish after the node loss\n{tails(logs)}")
        assert driver.returncode == 0, tails(logs)

    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    experiment = client.get_experiment_by_name("node-loss")
    runs = client.search_runs([experiment.experiment_id], "tags.`nasorch.role` = 'trial'")
    assert len(runs) == TRIALS
    moved = 0
    for run in runs:
        assert run.data.tags["nasorch.status"] == "completed", run.info.run_name
        history = client.get_metric_history(run.info.run_id, "score")
        assert sorted({m.step for m in history}) == list(range(1, EPOCHS + 1))
        places = {m.value for m in client.get_metric_history(run.info.run_id, "on_worker")}
        moved += places == {0.0, 1.0}  # started on the lost node, finished on the head
    assert moved >= 1


def _has_epochs(tmp: Path, n: int) -> bool:
    """Some trial on the second node has reported `n` epochs (Ray's own result files)."""
    for path in (tmp / "shared").glob("node-loss-*/*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if any(r.get("on_worker") == 1.0 and r.get("training_iteration", 0) >= n for r in lines):
            return True
    return False
