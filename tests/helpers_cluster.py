"""A user trainable for the multi-node test: it says, in its metrics, which node it ran on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import ray
from ray import tune

WORKER_RESOURCE = "worker_slot"  # custom resource that only the test's second node has
RENDEZVOUS_ENV = "NASORCH_TEST_RENDEZVOUS"  # a folder both test nodes see (same machine)


def where(config: dict) -> None:
    """Three short epochs, each reporting the Ray node id and whether this node is the one with
    the worker resource."""
    node_id = ray.get_runtime_context().get_node_id()
    resources = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node_id)
    on_worker = float(WORKER_RESOURCE in resources)
    _meet_the_other_node(node_id)
    score = sum(len(str(v)) for v in config["arch"].values()) / 10.0
    for epoch in range(1, 4):
        time.sleep(0.5)
        tune.report({"score": score * epoch, "on_worker": on_worker, "node_id": node_id})


def _meet_the_other_node(node_id: str, timeout: float = 20.0) -> None:
    """Waits until a trial of the same search has started on another node (or `timeout`).

    Trials this short can otherwise all finish on the first node before Ray Tune has placed one
    on the second (it reuses the first node's idle actor), which would make the test's check of
    "trials on both nodes" a matter of timing. Each trial leaves a marker named after its node.
    """
    root = os.environ.get(RENDEZVOUS_ENV)
    if not root:
        return
    folder = Path(root, tune.get_context().get_experiment_name())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / node_id).touch()
    deadline = time.monotonic() + timeout
    while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)


HOLD_EPOCH = 2  # a trial on the worker node waits after this epoch until the node is killed


def lasting(config: dict) -> None:
    """Eight epochs of 0.5 s, checkpointed each epoch, for the node-loss test: a trial whose node
    dies continues elsewhere from its last checkpoint. A marker file says where each trial
    started, so the test knows when the second node is busy.

    On the worker node a trial holds after epoch `HOLD_EPOCH` (up to 5 minutes): without that, a
    loaded machine's driver can learn of epoch 2 only after the trial has finished all eight, and
    the kill would find nothing to move."""
    import json
    import tempfile

    node_id = ray.get_runtime_context().get_node_id()
    resources = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node_id)
    on_worker = float(WORKER_RESOURCE in resources)
    root = os.environ.get(RENDEZVOUS_ENV)
    if root:
        folder = Path(root, "started")
        folder.mkdir(parents=True, exist_ok=True)
        (
            folder / f"{'worker' if on_worker else 'head'}-{tune.get_context().get_trial_id()}"
        ).touch()
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d, open(os.path.join(d, "epoch.json")) as f:
            start = json.load(f)["epoch"]
    score = sum(len(str(v)) for v in config["arch"].values()) / 10.0
    for epoch in range(start + 1, 9):
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "epoch.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            metrics = {"score": score * epoch, "on_worker": on_worker, "node_id": node_id}
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        if root and on_worker and epoch == HOLD_EPOCH:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # the test kills this node meanwhile
                time.sleep(0.5)
