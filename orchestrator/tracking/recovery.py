"""What a crashed driver reported to Ray but had not yet written to MLflow.

Ray's driver appends every result to the trial's `result.json` and flushes it at once; our
MLflow writer is asynchronous. After a SIGKILL the gap between the two is read back from those
files and written on resume, so no reported epoch is lost.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any


def unrecorded_results(experiment_dir: str, recorded: dict[str, int]) -> dict[str, list[dict]]:
    """Trial id -> results (in order) with an epoch beyond `recorded[trial id]`."""
    backlog: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(glob.glob(os.path.join(experiment_dir, "*", "result.json"))):
        with open(path) as f:
            for line in f:
                try:
                    result = json.loads(line)
                except ValueError:  # the last line may be torn by the crash
                    continue
                trial_id = result.get("trial_id")
                step = int(result.get("training_iteration", 0))
                if trial_id and step > recorded.get(trial_id, 0):
                    backlog.setdefault(trial_id, []).append(result)
    for results in backlog.values():
        results.sort(key=lambda r: r.get("training_iteration", 0))
    return backlog
