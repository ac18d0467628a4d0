"""A real two-node Ray cluster on this machine and a real MLflow tracking server.

`ray start` brings up a head and a second node (which alone has the custom resource
`worker_slot`), `mlflow server` runs on a free loopback port, and `nasorch run --address` drives a
small search against that cluster in its own process (so the test also covers the CLI path, and
the pytest process's own local Ray stays out of it). The checks read MLflow through its REST API
only, as any other client would. Everything started here is stopped in `finally` blocks, by
process group, even when a step fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers_cluster import RENDEZVOUS_ENV, WORKER_RESOURCE
from tests.helpers_procs import (
    BIN,
    ProcessGroups,
    Rest,
    clean_env,
    free_ports,
    http_ok,
    join_node,
    nasorch_cmd,
    port_open,
    ray_start,
    tags,
    tails,
    wait_for,
)

pytestmark = pytest.mark.integration

NUM_TRIALS = 6
EPOCHS = 3  # what tests.helpers_cluster.where reports


@pytest.fixture(scope="module")
def cluster(request) -> Iterator[dict]:
    """A Ray head and a second Ray node, and an MLflow server; all stopped at the end."""
    # Ray's dashboard serves the job API; it costs CPU while starting, so only when a job is run.
    jobs = any(item.name == "test_ray_job_submit" for item in request.session.items)
    # A short root: Ray's unix sockets live under it and their paths are limited to 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="nasorch-mn-"))
    env = clean_env()
    env[RENDEZVOUS_ENV] = str(tmp / "rendezvous")  # Ray's workers inherit it from `ray start`
    try:
        with ProcessGroups() as groups:
            yield from _start_cluster(groups, tmp, env, jobs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _start_cluster(groups: ProcessGroups, tmp: Path, env: dict, jobs: bool) -> Iterator[dict]:
    (gcs, client, dashboard, mlflow_port, *node_ports) = free_ports(4 + 12)
    address = f"127.0.0.1:{gcs}"
    logs = [tmp / "head.log", tmp / "worker.log", tmp / "mlflow.log"]
    mlflow = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
        "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--serve-artifacts",
        "--artifacts-destination", str(tmp / "mlartifacts"), "--workers", "1",
    ]  # fmt: skip
    groups.start(mlflow, logs[2], env=env, cwd=tmp)
    head = ray_start(
        node_ports[:6], "--head", "--port", str(gcs), "--ray-client-server-port", str(client),
        "--include-dashboard", str(jobs).lower(), "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(dashboard),
        "--temp-dir", str(tmp / "ray"),
    )  # fmt: skip
    groups.start(head, logs[0], env=env, cwd=tmp)
    wait_for(lambda: port_open(gcs), "the Ray head's GCS", 60, logs)
    worker = ray_start(
        node_ports[6:], "--address", address,
        "--resources", json.dumps({WORKER_RESOURCE: 1}), "--temp-dir", str(tmp / "ray"),
    )  # fmt: skip
    join_node(groups, worker, logs[1], logs, address=address, env=env, cwd=tmp)
    tracking_uri = f"http://127.0.0.1:{mlflow_port}"
    wait_for(lambda: http_ok(f"{tracking_uri}/health"), "the MLflow server", 90, logs)
    yield {
        "address": address, "tracking_uri": tracking_uri, "tmp": tmp, "env": env,
        "client_port": client, "dashboard_port": dashboard,
    }  # fmt: skip


def search_config(cluster: dict, name: str, trials: int = NUM_TRIALS) -> Path:
    config = {
        "name": name,
        "metric": "score",
        "num_samples": trials,
        "max_concurrent_trials": 2,  # one CPU per node and per trial: both nodes are needed
        "search_space": {
            "name": "custom",
            # A float parameter: no two trials share an architecture, so every trial trains.
            "options": {"params": {"a": ["x", "yy"], "u": {"type": "float", "low": 0, "high": 1}}},
        },
        "trainable": {"name": "tests.helpers_cluster:where"},
        "resources": {"cpu": 1},
        "storage_path": str(cluster["tmp"] / "shared"),  # one folder both nodes can reach
        "tracking": {"uri": cluster["tracking_uri"]},
    }
    path = cluster["tmp"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_logged(cluster: dict, name: str, cmd: list[str], timeout: float = 150) -> tuple[int, str]:
    """Runs `cmd` (a search's driver) in its own process group; its exit status and output."""
    log = cluster["tmp"] / f"{name}.log"
    with ProcessGroups() as groups:
        proc = groups.start(cmd, log, env=cluster["env"], cwd=cluster["tmp"])
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name}: no result in {timeout:.0f}s\n{tails([log])}")
    return proc.returncode, log.read_text(errors="replace")


@pytest.fixture(scope="module")
def search(cluster) -> dict:
    """`nasorch run CONFIG --address HOST:PORT`, its own Ray driver in its own process."""
    config = search_config(cluster, "multinode")
    status, output = run_logged(
        cluster, "multinode", nasorch_cmd(config, "--address", cluster["address"])
    )
    assert status == 0, output[-4000:]
    return {"output": output, "runs": Rest(cluster["tracking_uri"]).runs("multinode")}


def trial_runs(runs: list[dict]) -> list[dict]:
    return [r for r in runs if tags(r).get("nasorch.role") == "trial"]


def assert_on_both_nodes(trials: list[dict]) -> None:
    node_ids = {tags(r)["nasorch.node_id"] for r in trials}
    spans = sorted(
        (r["info"]["start_time"], r["info"]["end_time"], tags(r)["nasorch.node_id"][:8])
        for r in trials
    )
    assert len(node_ids) == 2, f"trials (start ms, end ms, node): {spans}"
    # The trainable also says whether its node is the one with the worker resource.
    by_node: dict[str, set[float | None]] = {}
    for r in trials:
        by_node.setdefault(tags(r)["nasorch.node_id"], set()).add(_last(r, "on_worker"))
    assert sorted(map(sorted, by_node.values())) == [[0.0], [1.0]]  # head and worker, one each


def test_search_finishes_through_the_cli(search):
    out = search["output"]
    assert f"Top {NUM_TRIALS} of {NUM_TRIALS} trials by score" in out
    assert "warning" not in out.lower()  # an HTTP tracking server is what a cluster wants
    parents = [r for r in search["runs"] if tags(r).get("nasorch.role") == "search"]
    assert len(parents) == 1 and parents[0]["info"]["status"] == "FINISHED"


def test_trials_ran_on_both_nodes(search):
    trials = trial_runs(search["runs"])
    assert len(trials) == NUM_TRIALS
    assert_on_both_nodes(trials)


def test_every_trials_metrics_arrived(cluster, search):
    rest = Rest(cluster["tracking_uri"])
    for run in trial_runs(search["runs"]):
        assert run["info"]["status"] == "FINISHED"
        assert tags(run)["nasorch.status"] == "completed"
        history = rest.history(run["info"]["run_id"], "score")
        assert [int(m["step"]) for m in history] == list(range(1, EPOCHS + 1))
        first = history[0]["value"]
        assert [m["value"] for m in history] == pytest.approx([first * e for e in (1, 2, 3)])


def _last(run: dict, key: str) -> float | None:
    return next((m["value"] for m in run["data"].get("metrics", []) if m["key"] == key), None)


@pytest.mark.slow
def test_ray_client_address(cluster):
    """`--address ray://HOST:PORT` (Ray Client): the same search, driven through the client."""
    config = search_config(cluster, "client", trials=4)
    address = f"ray://127.0.0.1:{cluster['client_port']}"
    status, output = run_logged(cluster, "client", nasorch_cmd(config, "--address", address))
    assert status == 0, output[-4000:]
    trials = trial_runs(Rest(cluster["tracking_uri"]).runs("client"))
    assert len(trials) == 4
    assert_on_both_nodes(trials)


@pytest.mark.slow
def test_ray_job_submit(cluster):
    """`ray job submit -- nasorch run CONFIG`: no --address, Ray's RAY_ADDRESS says where."""
    config = search_config(cluster, "job", trials=4)
    dashboard = f"http://127.0.0.1:{cluster['dashboard_port']}"
    wait_for(lambda: http_ok(f"{dashboard}/api/version"), "Ray's job API", 60, [])
    cmd = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--"]
    cmd += [str(BIN / "nasorch"), "run", str(config), "--quiet"]
    status, output = run_logged(cluster, "job", cmd, timeout=240)
    assert status == 0 and "Top 4 of 4 trials" in output, output[-4000:]
    trials = trial_runs(Rest(cluster["tracking_uri"]).runs("job"))
    assert len(trials) == 4
    assert_on_both_nodes(trials)
