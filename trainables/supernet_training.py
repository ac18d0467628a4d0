"""The DARTS supernet's training for the differentiable searcher (searchers/darts.py proposes
cells; the networks train here), checkpointed.

The training runs in steps that return every CHECKPOINT_SECONDS with a checkpoint (weights,
alpha, optimizers, random state), written atomically beside the search's folder and moved into
it, as CHECKPOINT_FILE, once trained. A search resumed (or started again) after a crash during
training continues from it. Where a step runs (a Ray task, on a GPU) is the caller's choice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

CHECKPOINT_FILE = "darts_supernet.pt"
CHECKPOINT_SECONDS = 60.0

Step = Callable[[dict[str, Any], bytes | None], tuple[bytes, dict[str, Any]]]


def train_darts(
    job: dict[str, Any], folder: str | None, run: Callable[[Step], Step] = lambda step: step
) -> dict[str, Any]:
    """Train the supernet `job` describes to the end (`nb201_darts.resume_training`'s job, with
    `dataset`, `val_fraction` and `threads`); returns its history, scores and seconds. With a
    `folder` (the search's), the checkpoint is kept and read back as described above; `run`
    wraps the step where it should run (the searcher's `on_a_worker`)."""
    # Until trained, the checkpoint sits beside the search's folder, named by the job: Ray
    # snapshots nothing before the first suggestion returns, so a search killed now cannot
    # be resumed, but the same search started again (same storage_path) continues it.
    pending = final = None
    if folder:
        digest = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
        pending = os.path.join(os.path.dirname(os.path.abspath(folder)), f".darts-{digest}.pt")
        final = os.path.join(folder, CHECKPOINT_FILE)
    blob = None
    for path in (final, pending):
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                blob = f.read()
            break
    print(
        f"nasorch: training the darts supernet ({job['epochs']} epochs"
        f"{', from its checkpoint' if blob else ''}); trials start after it",
        file=sys.stderr,
        flush=True,
    )
    step = run(search_epochs)
    while True:  # back on the driver, with a checkpoint, every CHECKPOINT_SECONDS
        blob, info = step(job, blob)
        if pending:
            _write_atomic(pending, blob)
        if "scores" in info:
            break
    if pending and final:  # trained: the weights and alpha stay with the search
        os.replace(pending, final)
    return info


def search_epochs(job: dict[str, Any], blob: bytes | None) -> tuple[bytes, dict[str, Any]]:
    """One step: `job`'s data, then training from the checkpoint `blob` (None: from the
    start) for up to CHECKPOINT_SECONDS (`nb201_darts.resume_training`). Uses CUDA when this
    process has a GPU."""
    import torch

    from search_spaces.torch_models.nb201_darts import resume_training
    from trainables import datasets

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = datasets.load(job["dataset"], "image", job["val_fraction"])
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val)
    tensors = [torch.from_numpy(a).to(device) for a in arrays]
    threads = torch.get_num_threads()
    torch.set_num_threads(job["threads"])
    try:
        return resume_training(job, blob, tensors, data.num_classes, CHECKPOINT_SECONDS)
    finally:
        torch.set_num_threads(threads)


def _write_atomic(path: str, blob: bytes) -> None:
    """A crash leaves the old checkpoint or the new one, never half (trainables cannot use the
    orchestrator's core/jsonio: it sits below it)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
