"""Whether a cluster can ever hold a trial: live nodes, and the autoscaler's node types."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.execution import capacity
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_live_nodes_that_hold_a_trial_need_no_words():
    nodes = [{"Alive": True, "Resources": {"CPU": 4.0, "GPU": 1.0}}]
    assert capacity.check_resources(1, 0.5, nodes, can_grow=False) is None


def test_a_private_ray_without_the_gpu_names_what_it_offers():
    line = capacity.check_resources(1, 1, [{"Alive": True, "Resources": {"CPU": 2.0}}], False)
    assert line == (
        "resources.gpu: each trial asks for 1 GPU, but no node of this Ray offers it "
        "(node 1: 2 CPU, 0 GPU)"
    )


def test_cluster_yaml_gpu_workers_can_hold_a_half_gpu_trial(cluster):
    assert capacity.node_types(cluster) == {
        "head": {"CPU": 0.0},
        "gpu_worker": {"CPU": 4.0, "GPU": 1.0},
    }
    line, fatal = capacity.check_node_types(1, 0.5, cluster, "cluster.yaml")
    assert not fatal
    assert line == (
        "each trial asks for 1 CPU and 0.5 GPU: waiting for the autoscaler to start a node of "
        "type gpu_worker"
    )


def test_what_no_node_type_offers_fails_naming_the_types(cluster):
    line, fatal = capacity.check_node_types(1, 2, cluster, "cluster.yaml")
    assert fatal
    assert line == (
        "resources.gpu: each trial asks for 2 GPU, but no node type of the cluster offers it "
        "(head: 0 CPU, 0 GPU; gpu_worker: 4 CPU, 1 GPU; from cluster.yaml)"
    )


def test_types_that_cannot_start_or_cannot_be_judged(cluster):
    stopped = {**cluster, "available_node_types": {
        **cluster["available_node_types"],
        "gpu_worker": {**cluster["available_node_types"]["gpu_worker"], "max_workers": 0},
    }}  # fmt: skip
    assert capacity.check_node_types(1, 0.5, stopped, "x")[1]  # no worker may start: fatal
    detected = {**cluster, "available_node_types": {"head": {}, "gpu": {"max_workers": 2}}}
    assert capacity.node_types(detected) is None  # resources left to the cloud to detect
    assert capacity.check_node_types(1, 0.5, detected, "x") is None


def test_the_cluster_config_is_found_by_env_or_on_the_head(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(capacity.CONFIG_ENV, raising=False)
    assert capacity.find_cluster_config() is None
    (tmp_path / "ray_bootstrap_config.yaml").write_text("{}")
    assert capacity.find_cluster_config() == tmp_path / "ray_bootstrap_config.yaml"
    mine = tmp_path / "mine.yaml"
    mine.write_text("- not a mapping")
    monkeypatch.setenv(capacity.CONFIG_ENV, str(mine))
    assert capacity.find_cluster_config() == mine
    with pytest.raises(ValueError, match="NASORCH_CLUSTER_CONFIG: .* is not a cluster config"):
        capacity.load_cluster_config(mine)
