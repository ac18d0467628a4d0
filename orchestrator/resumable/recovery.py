"""What a crashed driver reported to Ray but had not yet written to MLflow.

Ray's driver appends every result to the trial's `result.json` and flushes it at once; our
MLflow writer is asynchronous. After a SIGKILL the gap between the two is read back from those
files and written on resume, so no reported epoch is lost. Ray writes them first into a staging
folder of its session (`<ray temp>/session_*/artifacts/*/<experiment>/driver_artifacts`) and
copies them next to the experiment only from time to time, so both places are read.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

from orchestrator import compat
from trainables.storage import filesystem, is_uri

_TRIAL_DIR = re.compile(r"t\d+_\w+")


def trial_id_from_dirname(name: str) -> str | None:
    """The trial id in a folder nasorch named (`t007_1a2b3c4d` -> `1a2b3c4d`), or None for a
    folder not named that way. A trial's own id: after a PBT exploit its metrics can carry the
    donor's."""
    name = os.path.basename(name.rstrip("/"))
    if _TRIAL_DIR.fullmatch(name):
        return name.rsplit("_", 1)[-1]
    return None


def unrecorded_results(
    experiment_dir: str, recorded: dict[str, int], ray_path: str | None = None
) -> dict[str, list[dict]]:
    """Trial id -> results (in order) with an epoch beyond `recorded[trial id]`, from the
    result.json files beside the experiment, in Ray's staging folders on this machine and, when
    Ray's folder is in cloud storage (`ray_path`, a whole URI), there too."""
    paths = glob.glob(os.path.join(experiment_dir, "*", "result.json"))
    for staging in staging_dirs(os.path.basename(os.path.normpath(experiment_dir))):
        paths += glob.glob(os.path.join(staging, "*", "result.json"))
    files = [(os.path.dirname(p), _read(p)) for p in sorted(paths)]
    if ray_path and is_uri(ray_path):
        files += stored_results(ray_path)
    backlog: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple] = set()  # the same result in several copies of a file
    for folder, text in files:
        folder_id = trial_id_from_dirname(folder)
        for line in text.splitlines():
            try:
                result = json.loads(line)
            except ValueError:  # the last line may be torn by the crash
                continue
            trial_id = folder_id or result.get("trial_id")
            step = int(result.get("training_iteration", 0))
            key = (trial_id, step, result.get("timestamp"), result.get("time_total_s"))
            if trial_id and step > recorded.get(trial_id, 0) and key not in seen:
                seen.add(key)
                backlog.setdefault(trial_id, []).append(result)
    for results in backlog.values():
        results.sort(key=lambda r: r.get("training_iteration", 0))
    return backlog


def stored_results(ray_path: str) -> list[tuple[str, str]]:
    """(trial folder, result.json's text) of every trial under Ray's folder in cloud storage;
    none when the storage cannot be read now (what it holds is then recovered no further)."""
    import pyarrow.fs

    fs, root = filesystem(ray_path)
    out = []
    try:
        for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
            if info.type == pyarrow.fs.FileType.Directory and trial_id_from_dirname(info.path):
                path = f"{info.path}/result.json"
                if fs.get_file_info(path).type == pyarrow.fs.FileType.File:
                    with fs.open_input_stream(path) as f:
                        out.append((info.path, f.read().decode(errors="replace")))
    except OSError:
        return out
    return out


def _read(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def staging_dirs(experiment_name: str) -> list[str]:
    """Ray's driver-side staging folders of this experiment, in every Ray session on this
    machine (a resumed search runs in a new session; the crashed one's folder stays)."""
    return compat.ray_staging_dirs(experiment_name)
