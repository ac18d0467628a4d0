"""What a search leaves next to Ray's experiment folder so that it can be resumed after a crash.

- `nasorch_config.yaml`: the resolved config;
- `nasorch_state.json`: the MLflow parent run and each trial's child run (the tracker's writer
  keeps it current, atomically);
- `nasorch_done.json`: written last, when the search has finished and been recorded.

Ray snapshots the trials, the searcher (our JSON state) and the callbacks' states together; the
scheduler is not part of Ray's snapshot, so `SchedulerState`, a callback, carries its records
(stop reasons, PBT exploits) and ASHA's rungs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import AsyncHyperBandScheduler

from orchestrator import compat
from orchestrator.errors import UserError
from orchestrator.jsonio import write_json_atomic

CONFIG_FILE = "nasorch_config.yaml"
DONE_FILE = "nasorch_done.json"


def find_experiment(ref: str | os.PathLike, storage_path: str | None = None) -> str:
    """Ray's experiment folder from a path, or from a search name (its newest folder)."""
    path = Path(ref).expanduser()
    if (path / CONFIG_FILE).is_file():
        return str(path.resolve())
    from orchestrator.config import RESULTS_DIR

    root = storage_path or str(Path(RESULTS_DIR, "ray").resolve())
    found = latest_experiment(root, str(ref))
    if found is None:
        raise UserError(
            f"experiment: {ref!r} is neither a folder written by `nasorch run` nor the name of a "
            f"search under {root}"
        )
    return found


def latest_experiment(storage_path: str, name: str) -> str | None:
    """The newest folder of search `name` under `storage_path`; None for a path, not a name."""
    root = Path(storage_path)
    if not root.is_dir() or Path(name).name != name:
        return None
    candidates = sorted(
        p
        for p in root.glob(f"{name}-*")
        if (p / CONFIG_FILE).is_file() and p.name[len(name) + 1 :][:1].isdigit()
    )
    return str(candidates[-1].resolve()) if candidates else None


def read_done(path: str) -> dict[str, Any] | None:
    file = Path(path, DONE_FILE)
    return json.loads(file.read_text()) if file.is_file() else None


def write_done(path: str, payload: dict[str, Any]) -> None:
    write_json_atomic(Path(path, DONE_FILE), payload)


def restored_components(tuner: Any) -> tuple[Any, list[Any]]:
    """The searcher and callbacks Ray unpickled for a restored Tuner (Ray keeps them private)."""
    searcher = compat.tuner_search_alg(tuner)
    callbacks = compat.tuner_run_config(tuner).callbacks
    if searcher is None or not hasattr(searcher, "strategy"):
        raise UserError("this experiment was not written by `nasorch run`; it cannot be resumed")
    return searcher, callbacks


# nasorch's own records on a scheduler: why trials stopped, PBT's exploits (see stopping.py and
# population.py). They become MLflow tags when a trial ends, so they must survive a resume.
RECORDS = ("stop_reasons", "exploits", "_tagged")


class SchedulerState(Callback):
    """Carries the scheduler's bookkeeping through Ray's experiment snapshots: nasorch's stop
    reasons and PBT exploit records, and ASHA's rungs. Other statistics (Hyperband's brackets,
    the median rule's curves, PBT's quantiles) are rebuilt from the resumed trials' results."""

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler

    def get_state(self) -> dict | None:
        s = self.scheduler
        state: dict[str, Any] = {k: getattr(s, k) for k in RECORDS if hasattr(s, k)}
        if isinstance(s, AsyncHyperBandScheduler):
            state["num_stopped"] = s._num_stopped
            state["rungs"] = [[dict(recorded) for _, recorded in b._rungs] for b in s._brackets]
        return state or None

    def set_state(self, state: dict) -> None:
        s = self.scheduler
        if not state:
            return
        for key in RECORDS:
            if key in state and hasattr(s, key):
                getattr(s, key).update(state[key])
        if "rungs" not in state or not isinstance(s, AsyncHyperBandScheduler):
            return
        s._num_stopped = state["num_stopped"]
        for bracket, rungs in zip(s._brackets, state["rungs"]):
            for (_, recorded), saved in zip(bracket._rungs, rungs):
                recorded.clear()
                recorded.update(saved)
