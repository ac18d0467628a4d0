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

_TRIAL_DIR = re.compile(r"t\d+_\w+")


def trial_id_from_dirname(name: str) -> str | None:
    """The trial id in a folder nasorch named (`t007_1a2b3c4d` -> `1a2b3c4d`), or None for a
    folder not named that way. A trial's own id: after a PBT exploit its metrics can carry the
    donor's."""
    name = os.path.basename(name.rstrip("/"))
    if _TRIAL_DIR.fullmatch(name):
        return name.rsplit("_", 1)[-1]
    return None


def unrecorded_results(experiment_dir: str, recorded: dict[str, int]) -> dict[str, list[dict]]:
    """Trial id -> results (in order) with an epoch beyond `recorded[trial id]`."""
    paths = glob.glob(os.path.join(experiment_dir, "*", "result.json"))
    for staging in staging_dirs(os.path.basename(os.path.normpath(experiment_dir))):
        paths += glob.glob(os.path.join(staging, "*", "result.json"))
    backlog: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple] = set()  # the same result in several copies of a file
    for path in sorted(paths):
        folder_id = trial_id_from_dirname(os.path.dirname(path))
        with open(path) as f:
            for line in f:
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


def staging_dirs(experiment_name: str) -> list[str]:
    """Ray's driver-side staging folders of this experiment, in every Ray session on this
    machine (a resumed search runs in a new session; the crashed one's folder stays)."""
    return compat.ray_staging_dirs(experiment_name)
