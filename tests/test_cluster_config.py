"""cluster.yaml: valid for `ray up` (Ray's own schema), safe by default, and the README's
"Launch on a cluster" steps name what the file really does."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator import compat
from orchestrator.execution.components import load_config

ROOT = Path(__file__).resolve().parents[1]
COMMAND_LISTS = (
    "initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
    "head_start_ray_commands", "worker_start_ray_commands",
)  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


@pytest.fixture(scope="module")
def commands(cluster) -> list[str]:
    return [c for key in COMMAND_LISTS for c in cluster.get(key) or []]


@pytest.fixture(scope="module")
def readme_section() -> str:
    text = (ROOT / "docs" / "tutorials" / "cluster.md").read_text()
    match = re.search(r"^## 2\. The cluster\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "docs/tutorials/cluster.md has no '## 2. The cluster' section"
    return match.group(1)


def test_passes_rays_cluster_config_schema(cluster):
    merged = compat.ray_validate_cluster_config(cluster)
    assert merged["available_node_types"].keys() == cluster["available_node_types"].keys()


def test_the_schema_check_does_catch_mistakes(cluster):
    typo = copy.deepcopy(cluster)
    typo["available_node_types"]["gpu_worker"]["min_worker"] = 0
    with pytest.raises(jsonschema.ValidationError):
        compat.ray_validate_cluster_config(typo)


def test_cpu_head_and_gpu_workers_from_zero(cluster):
    types = cluster["available_node_types"]
    head = types[cluster["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    workers = [t for name, t in types.items() if name != cluster["head_node_type"]]
    assert len(workers) == 1 and workers[0]["resources"]["GPU"] >= 1
    assert workers[0]["min_workers"] == 0 and workers[0]["max_workers"] >= 1


def test_setup_installs_the_project_with_pinned_versions(cluster):
    install = " ".join(c for c in cluster["setup_commands"] if "pip install" in c)
    assert "-e ~/nasorch" in install and cluster["file_mounts"]["~/nasorch"] == "."
    for package in ("ray[default,tune]", "mlflow", "torch"):
        assert re.search(rf'"{re.escape(package)}==\d+\.\d+\.\d+"', install), package


def test_every_command_is_valid_shell(commands):
    for command in commands:
        # Ray runs each command as `bash --login -c -i "source ~/.bashrc; ... && (COMMAND)"`.
        done = subprocess.run(["bash", "-n", "-c", f"({command})"], capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr}"


def test_nothing_listens_on_all_interfaces(commands):
    text = "\n".join(commands)
    assert "0.0.0.0" not in text
    assert "--dashboard-host=127.0.0.1" in text
    mlflow = next(c for c in commands if "mlflow server" in c)
    assert "--host 127.0.0.1" in mlflow


def test_head_runs_an_mlflow_server_with_a_database_and_shared_artifacts(cluster):
    mlflow = next(c for c in cluster["head_start_ray_commands"] if "mlflow server" in c)
    assert "--backend-store-uri sqlite:///" in mlflow
    assert "--serve-artifacts --artifacts-destination $NASORCH_SHARED/" in mlflow


def test_node_environment(cluster, tmp_path):
    """The env-file commands, run for real in a scratch HOME: every node gets token auth, the
    head's driver records to its MLflow server and checkpoints to the shared prefix."""
    env_cmds = [c for c in cluster["setup_commands"] if ".nasorch_env" in c and "bashrc" not in c]
    env_cmds += [c for c in cluster["head_setup_commands"] if ".nasorch_env" in c]
    script = " && ".join(env_cmds) + " && . ~/.nasorch_env && env"
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    out = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=True
    )
    got = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert got["RAY_AUTH_MODE"] == "token"
    assert got["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert got["NASORCH_STORAGE_PATH"] == got["NASORCH_SHARED"] + "/ray"
    assert got["NASORCH_SHARED"].startswith("s3://")


def test_storage_path_default_comes_from_the_environment(monkeypatch):
    base = {"name": "x", "search_space": {"name": "mlp"}}
    monkeypatch.setenv("NASORCH_STORAGE_PATH", "s3://bucket/nasorch/ray")
    assert load_config(base).resolved_storage_path() == "s3://bucket/nasorch/ray"
    monkeypatch.delenv("NASORCH_STORAGE_PATH")
    assert load_config(base).storage_path == "nasorch_results/ray"


def test_readme_steps_match_the_file(cluster, commands, readme_section):
    text = "\n".join(commands)
    # Every cluster-launcher command in the README acts on this file.
    launcher = re.findall(r"^\s*ray (up|down|attach|dashboard|exec|rsync-down)\b(.*)$",
                          readme_section, re.M)  # fmt: skip
    assert {"up", "down", "dashboard", "attach"} <= {verb for verb, _ in launcher}
    for verb, rest in launcher:
        assert rest.split()[0] == "cluster.yaml", f"ray {verb}{rest}"
    # The ports the README forwards and opens are the ones the head binds.
    mlflow_port = re.search(r"mlflow server .*--port (\d+)", text).group(1)
    dashboard_port = re.search(r"--dashboard-port=(\d+)", text).group(1)
    assert f"ray attach cluster.yaml -p {mlflow_port}" in readme_section
    assert f"http://127.0.0.1:{mlflow_port}" in readme_section
    assert f"http://127.0.0.1:{dashboard_port}" in readme_section
    # The names a user must know about are the file's.
    for name in ("RAY_AUTH_MODE=token", "~/.ray/auth_token", "NASORCH_SHARED", "~/mlflow"):
        assert name in readme_section, name
        assert name in (ROOT / "cluster.yaml").read_text(), name
