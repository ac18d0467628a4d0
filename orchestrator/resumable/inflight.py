"""The MLflow writer's round in flight: what a crash may have written without the state file
knowing.

The writer records each trial's run and last epoch in `nasorch_state.json` after MLflow took a
round, so the file never claims more than is there. When the whole process tree is killed
between the two (a SIGKILL of the job, a lost node), MLflow holds runs or epochs the file does
not: the resumed search would create a second run for the trial, or log its replayed epochs
twice. So before each round the writer notes what it is about to write (`note`), and clears the
note once the state file agrees (`clear`). On resume, `settle` asks MLflow how far a noted round
got and brings the state file up to it before anything reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from orchestrator.core import tags as T
from orchestrator.core.jsonio import write_json_atomic
from orchestrator.resumable.state_file import SearchState

INFLIGHT_FILE = "nasorch_inflight.json"


def path_for(state: SearchState) -> Path:
    return state.path.with_name(INFLIGHT_FILE)


def round_intent(events: list, run_ids: dict[str, str]) -> dict[str, Any]:
    """What a round writes that the state file tracks: runs it creates (trial id -> [number,
    arch hash]) and the last epoch it logs per trial (trial id -> [epoch, a metric's name])."""
    starts: dict[str, list] = {}
    steps: dict[str, list] = {}
    for kind, trial_id, payload in events:
        if kind == "start" and trial_id not in run_ids:
            tags = payload[1]
            starts[trial_id] = [int(tags.get(T.TRIAL_NUMBER, 0)), tags.get(T.ARCH_HASH, "")]
        elif kind == "metrics" and payload[0]:
            metrics, step = payload[0], int(payload[1])
            if step >= steps.get(trial_id, [-1])[0]:
                steps[trial_id] = [step, next(iter(metrics))]
    return {"starts": starts, "steps": steps} if starts or steps else {}


def note(state: SearchState, intent: dict[str, Any]) -> None:
    if intent:
        write_json_atomic(path_for(state), intent)


def clear(state: SearchState) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path_for(state))


def settle(state: SearchState, client: Any, parent_run_id: str) -> int:
    """Bring the state file up to what MLflow holds of the noted round; returns how many trials
    it changed. MLflow unreachable: the note stays for the next resume."""
    path = path_for(state)
    if not path.is_file():
        return 0
    try:
        intent = json.loads(path.read_text())
    except ValueError:  # torn by the crash: the round had not started writing
        clear(state)
        return 0
    saved = state.read()
    runs, steps = dict(saved.get("runs", {})), dict(saved.get("steps", {}))
    trials = dict(saved.get("trials", {}))
    changed = 0
    try:
        starts = {t: v for t, v in intent.get("starts", {}).items() if t not in runs}
        experiment = client.get_run(parent_run_id).info.experiment_id if starts else None
        for trial_id, trial in starts.items():
            query = f"tags.mlflow.parentRunId = '{parent_run_id}' and "
            query += f"tags.`{T.TRIAL_ID}` = '{trial_id}'"
            found = client.search_runs([experiment], query, max_results=1)
            if found:
                runs[trial_id], trials[trial_id] = found[0].info.run_id, trial
                changed += 1
        for trial_id, (step, key) in intent.get("steps", {}).items():
            if trial_id not in runs or steps.get(trial_id, 0) >= step:
                continue
            history = client.get_metric_history(runs[trial_id], key)
            written = max((int(m.step) for m in history), default=0)
            if written > steps.get(trial_id, 0):
                steps[trial_id] = written
                changed += 1
    except Exception:  # noqa: BLE001  (no answer now: settled on a later resume)
        return 0
    if changed:
        state.update(runs=runs, steps=steps, trials=trials)
    clear(state)
    return changed
