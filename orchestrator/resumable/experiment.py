"""What a search leaves next to Ray's experiment folder so that it can be resumed after a crash.

- `nasorch_config.yaml`: the resolved config;
- `nasorch_state.json`: the MLflow parent run and each trial's child run (the tracker's writer
  keeps it current, atomically);
- `nasorch_done.json`: written last, when the search has finished and been recorded.

Ray snapshots the trials, the searcher (our JSON state) and the callbacks' states together
(`scheduler_state.SchedulerState` carries the scheduler's).
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

from orchestrator import compat
from orchestrator.core.errors import UserError
from orchestrator.core.jsonio import write_json_atomic
from trainables.storage import filesystem

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


def ray_snapshot_saved(ray_path: str) -> bool:
    """Has Ray snapshotted the experiment in `ray_path` (a folder or a URI)? Ray's own
    `Tuner.can_restore` looks for the tuner.pkl written when the Tuner is made, before the
    first suggestion and Ray's first snapshot; restoring from that alone restarts Ray's half of
    the search without nasorch's (a `darts` searcher killed while training its supernet)."""
    import pyarrow.fs

    fs, path = filesystem(ray_path)
    try:
        found = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except OSError:
        return False
    return any(fnmatch.fnmatch(os.path.basename(f.path), compat.RAY_SNAPSHOT_GLOB) for f in found)
