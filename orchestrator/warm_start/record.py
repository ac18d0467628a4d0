"""The earlier trials of named MLflow experiments, read back as `PastTrial`s.

A search's parent run carries its fingerprints (tags.FINGERPRINT, tags.RECIPE); each trial's
run its architecture (tags.ARCH, tags.ARCH_HASH), status and epochs, and its metrics' last
values. Trials that errored, were interrupted or superseded are not results;
reused ones are copies of a trial already in the record (their source answers for them).
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.core import tags as T
from orchestrator.core.errors import UserError
from orchestrator.warm_start.plan import PastTrial
from search_spaces.base import SearchSpace

RESULT_STATUSES = ("completed", "stopped_early")


def read_record(
    client: Any,
    experiments: list[str],
    *,
    space: SearchSpace,
    metrics: list[str],
    skip_parent: str | None = None,
) -> list[PastTrial]:
    """Every trial result of `experiments` (MLflow experiment names), oldest first, except
    those of the search `skip_parent`. `metrics`: the metric and any further objectives (a
    trial lacking one is not a result)."""
    past: list[PastTrial] = []
    for name in experiments:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise UserError(f"warm_start.experiments: no MLflow experiment named {name!r}")
        parents = {
            r.info.run_id: r
            for r in _all_runs(client, exp.experiment_id, f"tags.`{T.ROLE}` = '{T.SEARCH}'")
            if T.FINGERPRINT in r.data.tags and r.info.run_id != skip_parent
        }
        trials = _all_runs(client, exp.experiment_id, f"tags.`{T.ROLE}` = '{T.TRIAL}'")
        for run in sorted(trials, key=lambda r: r.info.start_time or 0):
            parent = parents.get(run.data.tags.get("mlflow.parentRunId", ""))
            if parent is not None:
                trial = _past_trial(run, parent, space, metrics)
                if trial is not None:
                    past.append(trial)
    return past


def _past_trial(run: Any, parent: Any, space: SearchSpace, metrics: list[str]) -> PastTrial | None:
    tags = run.data.tags
    if tags.get(T.STATUS) not in RESULT_STATUSES:
        return None
    values = [run.data.metrics.get(m) for m in metrics]
    if any(v is None for v in values):
        return None
    try:  # the tag is cut at 5,000 characters: a very large architecture cannot come back
        arch = space.validate(json.loads(tags.get(T.ARCH, "")))
    except Exception:
        return None
    key = space.key(arch)
    if key != tags.get(T.ARCH_HASH):  # another version of the space, or a cut tag
        return None
    return PastTrial(
        arch=arch,
        key=key,
        value=float(values[0]) if len(values) == 1 else [float(v) for v in values],
        epochs=int(tags.get(T.EPOCHS) or 0),
        complete=tags[T.STATUS] == "completed",
        fingerprint=parent.data.tags[T.FINGERPRINT],
        recipe=parent.data.tags.get(T.RECIPE, ""),
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        metrics=dict(run.data.metrics),
        checkpoint=tags.get(T.CHECKPOINT, ""),
    )


def _all_runs(client: Any, experiment_id: str, query: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=query, max_results=1000, page_token=token
        )
        runs += list(page)
        token = page.token
        if not token:
            return runs
