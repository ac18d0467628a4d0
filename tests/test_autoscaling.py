"""cluster.yaml's autoscaling, run for real on this machine with Ray's fake multi-node provider.

The head starts with `RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=...` on ports
chosen here and a private temp folder; the autoscaler config is derived from the real
`cluster.yaml` (its node types and their resources), so this test breaks when the file's node
types can no longer serve a trial asking for half a GPU. `nasorch run --address` then runs a
small torch search with `resources.gpu=0.5`; through MLflow's REST API the test checks that every
trial ran on an autoscaled GPU worker (none on the CPU-less head), that each run says it trained
on the CPU (the fake workers advertise GPUs that do not exist) and the search warned about it,
and that the workers are gone after the idle timeout. A request no node type can offer fails at
once. Everything started here is stopped by process group, never with a bare `ray stop`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT
from tests.helpers_procs import (
    ProcessGroups,
    clean_env,
    free_ports,
    nasorch_cmd,
    port_open,
    ray_start,
    tails,
    wait_for,
)

pytestmark = pytest.mark.integration

TRIALS = 4
HEAD = "ray.head.default"  # the fake provider's name for the head's type
# Every top-level field the autoscaler reads (it fills in no defaults for this provider).
EMPTY_FIELDS = {
    "docker": {}, "auth": {"ssh_user": "ubuntu"}, "file_mounts": {}, "cluster_synced_files": [],
    "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
    "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
    "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
}  # fmt: skip


def fake_cluster(cluster: dict, gcs_address: str) -> dict:
    """cluster.yaml's node types and resources under the fake provider (head renamed as the
    provider requires; at most 2 workers a type on this 2-core machine; idle after 6 s)."""
    types = {}
    for name, spec in cluster["available_node_types"].items():
        if name == cluster["head_node_type"]:
            types[HEAD] = {
                "resources": dict(spec["resources"]),
                "node_config": {},
                "max_workers": 0,
            }
        else:
            types[name] = {
                "resources": dict(spec["resources"]), "node_config": {},
                "min_workers": spec.get("min_workers", 0),
                "max_workers": min(spec.get("max_workers", cluster["max_workers"]), 2),
            }  # fmt: skip
    return {
        **EMPTY_FIELDS,
        "cluster_name": "nasorch-fake",
        "max_workers": min(cluster["max_workers"], 2),
        "upscaling_speed": cluster.get("upscaling_speed", 1.0),
        "idle_timeout_minutes": 0.1,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },  # fmt: skip
        "available_node_types": types,
        "head_node_type": HEAD,
    }


def nodes(address: str, env: dict) -> list[dict]:
    """The cluster's nodes as Ray lists them (id, alive, resources), from a separate process."""
    code = (
        f"import json, ray; ray.init(address={address!r}, log_to_driver=False, "
        "logging_level='ERROR'); print(json.dumps([dict(id=n['NodeID'], alive=n['Alive'], "
        "resources=n['Resources']) for n in ray.nodes()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=90
    )
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    real = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    # A short root: Ray's unix sockets live under it and their paths are limited to 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="nasorch-as-"))
    gcs, client, *node_ports = free_ports(2 + 6)
    address = f"127.0.0.1:{gcs}"
    config = tmp / "autoscaler.yaml"
    config.write_text(yaml.safe_dump(fake_cluster(real, address)))
    head_cpus = real["available_node_types"][real["head_node_type"]]["resources"].get("CPU", 0)
    env = {**clean_env(), "RAY_FAKE_CLUSTER": "1"}
    log = tmp / "head.log"
    try:
        with ProcessGroups() as groups:
            cmd = ray_start(
                node_ports, "--head", "--port", str(gcs), "--ray-client-server-port", str(client),
                "--include-dashboard", "false", "--num-cpus", str(int(head_cpus)),
                "--num-gpus", "0", "--autoscaling-config", str(config),
                "--temp-dir", str(tmp / "ray"),
            )  # fmt: skip
            groups.start(cmd, log, env=env, cwd=tmp)
            wait_for(lambda: port_open(gcs), "the Ray head's GCS", 60, [log])
            found: list[dict] = []
            wait_for(lambda: found.extend(nodes(address, env)) or found, "the head", 90, [log])
            (head,) = [n["id"] for n in found]  # no worker yet: min_workers is 0
            yield {
                "address": address, "env": env, "tmp": tmp, "config": config, "log": log,
                "head": head,
            }  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def search_config(cluster: dict, name: str) -> Path:
    config = {
        "name": name,
        "metric": "val_accuracy",
        "num_samples": TRIALS,
        "max_concurrent_trials": TRIALS,
        "seed": 0,
        "search_space": {"name": "mlp", "options": {"max_depth": 1, "widths": [16, 32]}},
        "trainable": {"name": "torch", "options": {"dataset": "digits", "epochs": 2}},
        "searcher": {"name": "random"},
        "resources": {"cpu": 1, "gpu": 0},  # --set resources.gpu=0.5 below, as a user would
        "storage_path": str(cluster["tmp"] / "results"),
        "tracking": {"uri": f"sqlite:///{cluster['tmp']}/mlflow.db"},
    }
    path = cluster["tmp"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_search(cluster: dict, name: str, gpu: str, timeout: float) -> tuple[int, str]:
    log = cluster["tmp"] / f"{name}.log"
    cmd = nasorch_cmd(
        search_config(cluster, name), "--address", cluster["address"],
        "--set", f"resources.gpu={gpu}",
    )  # fmt: skip
    env = {**cluster["env"], "NASORCH_CLUSTER_CONFIG": str(cluster["config"])}
    env.pop("RAY_FAKE_CLUSTER")
    with ProcessGroups() as groups:
        proc = groups.start(cmd, log, env=env, cwd=cluster["tmp"])
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = -1
    return code, log.read_text(errors="replace")


def test_an_impossible_request_fails_at_once_naming_the_node_types(cluster):
    code, out = run_search(cluster, "toobig", gpu="2", timeout=120)
    assert code == 2, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("nasorch: error:")]
    assert len(errors) == 1, out[-3000:]
    assert errors[0].startswith(
        "nasorch: error: resources.gpu: each trial asks for 2 GPU, but no node type of the "
        "cluster offers it ("
    )
    assert errors[0].endswith(f"; from {cluster['config']})")
    assert "gpu_worker: 4 CPU, 1 GPU" in errors[0] and "ray.head.default: 0 CPU, 0 GPU" in errors[0]
    assert "Traceback" not in out


def test_trials_run_on_autoscaled_gpu_workers_that_go_away_when_idle(cluster):
    address, env = cluster["address"], cluster["env"]
    code, out = run_search(cluster, "fakegpu", gpu="0.5", timeout=170)
    assert code == 0, out[-3000:] + tails([cluster["log"]])
    assert "waiting for the autoscaler to start a node of type gpu_worker" in out
    assert "was given 0.5 GPU but trained on the CPU" in out  # the fake GPUs do not exist
    # Ray lists the nodes it ever had (the idle ones may be gone already: alive False).
    workers = {n["id"] for n in nodes(address, env)} - {cluster["head"]}
    assert workers
    client = MlflowClient(f"sqlite:///{cluster['tmp']}/mlflow.db")
    experiment = client.get_experiment_by_name("fakegpu")
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags.get("nasorch.role") == "trial"]
    assert len(trials) == TRIALS
    for run in trials:
        t = run.data.tags
        assert t["nasorch.node_id"] in workers, t  # an autoscaled worker, not the head
        assert t["nasorch.device"] == "cpu" and run.info.status == "FINISHED"
    (parent,) = [r for r in runs if r.data.tags.get("nasorch.role") == "search"]
    assert parent.data.metrics["accelerator_hours_reserved"] > 0
    assert parent.data.metrics["accelerator_hours_used"] == 0  # nothing ran on a real GPU
    # The autoscaler removes the idle workers (idle_timeout_minutes 0.1 plus its update period).
    wait_for(
        lambda: {n["id"] for n in nodes(address, env) if n["alive"]} == {cluster["head"]},
        "the idle GPU workers to be removed",
        90,
        [cluster["log"]],
    )
