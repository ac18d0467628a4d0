"""`--source mlflow:EXPERIMENT`: the learning curves a past search left in MLflow, as a curve
source, so the next search's searcher and scheduler are chosen on the last one's curves.

The newest nasorch search of the experiment (its parent run) gives the metric, the mode and the
search space (rebuilt with the registry, so searchers sample and mutate in it); the trials are
every result with that search's fingerprint (`warm_start.record`: same recipe and data, so
earlier searches of the same config count too). Each trial's metric history (step = epoch)
becomes one row of the same in-memory table `TableCurves` builds from a CSV: only the recorded
configurations are candidates, and the replay is the table's.

Only trials that ran their full budget (status `completed`) are candidates. A trial a scheduler
stopped has no values past its last epoch, and inventing them (holding the last value) would
decide for the simulated scheduler what the real one never saw; the count left out is said on
stderr, and a search with too few full curves is refused in one line that says why.

Epoch times are real seconds: the trainable's own `epoch_seconds` (the torch trainable) or
`curve_time_s` (the curve trainable's cumulative table time) where it logged one, else the gaps
between the moments MLflow logged successive epochs (the first from the run's start).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.config import default_tracking_uri, parse_config
from orchestrator.core import tags as T
from orchestrator.core.errors import UserError, first_line
from orchestrator.execution.components import build_space
from orchestrator.tracking.session import existing_client
from orchestrator.warm_start.record import read_record
from search_spaces.base import Arch, SearchSpace
from search_spaces.candidates import CandidateSpace
from trainables.curves import Curve, CurveError, TableCurves

PREFIX = "mlflow:"
USAGE = "mlflow:EXPERIMENT or mlflow:EXPERIMENT@TRACKING_URI"
# Times a trainable logs itself, more exact than when the driver logged the epoch:
# (metric, cumulative?)
TIME_METRICS = (("epoch_seconds", False), ("curve_time_s", True))
MIN_CANDIDATES = 2  # one candidate leaves nothing to choose
MIN_EPOCH_S = 0.001  # MLflow's timestamps are milliseconds: a faster epoch still takes time
SEARCH_FILTER = f"tags.`{T.ROLE}` = '{T.SEARCH}'"


@dataclass(frozen=True)
class TrialHistory:
    """One recorded trial: its architecture, whether it ran its full budget, and at each epoch
    the metric and the cumulative seconds."""

    arch: Arch
    complete: bool
    values: dict[int, float]
    times: dict[int, float]


def parse_spec(spec: str) -> tuple[str, str]:
    """(experiment, tracking URI) of `mlflow:EXPERIMENT[@URI]`; without a URI,
    MLFLOW_TRACKING_URI, else nasorch's local store (as `nasorch compare` finds it)."""
    name, _, uri = spec.removeprefix(PREFIX).partition("@")
    if not name.strip():
        raise CurveError(f"{spec!r} names no experiment; use {USAGE}")
    uri = uri.strip() or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    return name.strip(), uri


def mlflow_curves(spec: str) -> TableCurves:
    return _load(*parse_spec(spec))


@functools.lru_cache(maxsize=4)  # read once per process: forked workers inherit the table
def _load(name: str, uri: str) -> TableCurves:
    where = f"{PREFIX}{name}"
    client = existing_client(uri, field=f"--source: {where}")
    exp = client.get_experiment_by_name(name)
    if exp is None:
        raise CurveError(f"{where}: no MLflow experiment named {name!r} in {uri}; use {USAGE}")
    newest = client.search_runs(
        [exp.experiment_id], SEARCH_FILTER, order_by=["attributes.start_time DESC"], max_results=1
    )
    if not newest:
        raise CurveError(f"{where}: experiment {name!r} holds no nasorch search")
    parent = newest[0]
    metric = parent.data.params.get("metric") or "val_accuracy"
    mode = parent.data.params.get("mode") or "max"
    space = _recorded_space(client, parent, where)
    fingerprint = parent.data.tags.get(T.FINGERPRINT)
    past = [
        p
        for p in read_record(client, [name], space=space, metrics=[metric])
        if p.fingerprint == fingerprint
    ]
    if not past:
        raise CurveError(
            f"{where}: its newest search has no trial results for {metric!r} (errored, "
            "interrupted and reused trials are not results)"
        )
    trials = [_history(client, p, metric) for p in past]
    base = space.base if isinstance(space, CandidateSpace) else space
    source, left_out = to_table(name, base, trials, metric, mode)
    if left_out:
        print(
            f"nasorch simulate: {where}: {len(source.curves)} configurations ran all "
            f"{source.max_epochs} epochs and are the candidates; {left_out} trials stopped "
            "early (or missing epochs) are left out: their curves end early",
            file=sys.stderr,
        )
    return source


def to_table(
    name: str, space: SearchSpace, trials: list[TrialHistory], metric: str, mode: str
) -> tuple[TableCurves, int]:
    """The table of the trials that ran their full budget (an architecture trained twice: its
    first full curve), and how many others were left out. Pure: no MLflow."""
    where = f"{PREFIX}{name}"
    full = [t for t in trials if t.complete and _gapless(t)]
    left_out = len(trials) - len(full)
    lengths = sorted({len(t.values) for t in full})
    if len(lengths) > 1:
        raise CurveError(
            f"{where}: its completed trials ran different numbers of epochs "
            f"({', '.join(map(str, lengths))}); a replay needs one budget for all"
        )
    curves: dict[str, Curve] = {}
    archs: list[Arch] = []
    for t in full:
        key = space.key(t.arch)
        if key not in curves:
            epochs = range(1, len(t.values) + 1)
            curves[key] = Curve(
                np.array([t.values[e] for e in epochs], dtype=float),
                np.maximum.accumulate(np.array([t.times[e] for e in epochs], dtype=float)),
            )
            archs.append(t.arch)
    if len(curves) < MIN_CANDIDATES:
        raise CurveError(
            f"{where}: {len(curves)} configuration(s) ran their full budget, a replay needs at "
            f"least {MIN_CANDIDATES}; {left_out} of {len(trials)} trial results were stopped "
            "early or incomplete, and a stopped curve is not extended (a search with the fifo "
            "scheduler records full curves)"
        )
    table = TableCurves(_file_safe(name), CandidateSpace(space, archs), curves, metric, mode)
    return table, left_out


def _gapless(t: TrialHistory) -> bool:
    epochs = list(range(1, len(t.values) + 1))
    return bool(epochs) and sorted(t.values) == epochs and all(e in t.times for e in epochs)


def times_from_stamps(stamps: dict[int, int], start_ms: int | None) -> dict[int, float]:
    """Cumulative seconds at each epoch from the milliseconds at which each epoch's metric was
    logged. The first epoch runs from the trial's start when the run began before it (the run
    may be created after a fast first epoch: its length is then the median of the others')."""
    epochs = sorted(stamps)
    gaps = [(stamps[b] - stamps[a]) / 1000 for a, b in zip(epochs, epochs[1:])]
    first = (stamps[epochs[0]] - start_ms) / 1000 if epochs and start_ms else 0.0
    if first <= 0:
        first = float(np.median(gaps)) if gaps else MIN_EPOCH_S
    seconds = np.maximum([first, *gaps], MIN_EPOCH_S) if epochs else np.array([])
    return dict(zip(epochs, np.cumsum(seconds).tolist()))


def times_from_metric(
    logged: dict[int, float], cumulative: bool, epochs: list[int]
) -> dict[int, float]:
    """Cumulative seconds at each of `epochs` from a logged time metric. An epoch it was not
    logged at repeated its first value: the tracker holds back a value that stays the same
    (events.RepeatFilter) and writes every one once it changes."""
    if not logged:
        return {}
    first = logged[min(logged)]
    secs = np.array([logged.get(e, first) for e in epochs], dtype=float)
    total = secs if cumulative else np.cumsum(np.maximum(secs, MIN_EPOCH_S))
    return dict(zip(epochs, total.tolist()))


def _history(client: Any, past: Any, metric: str) -> TrialHistory:
    """A recorded trial's curve and times, read from MLflow."""
    values, stamps = _by_step(client.get_metric_history(past.run_id, metric))
    for time_metric, cumulative in TIME_METRICS:
        if time_metric in past.metrics:
            logged, _ = _by_step(client.get_metric_history(past.run_id, time_metric))
            times = times_from_metric(logged, cumulative, sorted(values))
            break
    else:
        times = times_from_stamps(stamps, client.get_run(past.run_id).info.start_time)
    return TrialHistory(past.arch, past.complete, values, times)


def _by_step(history: list[Any]) -> tuple[dict[int, float], dict[int, int]]:
    """Value and timestamp at each step >= 1 (epochs), the earliest point of a step where a
    resumed trial logged it again."""
    values: dict[int, float] = {}
    stamps: dict[int, int] = {}
    for m in sorted(history, key=lambda m: (m.step, m.timestamp)):
        if m.step >= 1 and m.step not in values:
            values[m.step], stamps[m.step] = float(m.value), int(m.timestamp)
    return values, stamps


def _recorded_space(client: Any, parent: Any, where: str) -> SearchSpace:
    """The search space of the search's config, built with the registry."""
    params = parent.data.params
    try:
        options = json.loads(params.get("search_space.options") or "{}")
    except json.JSONDecodeError:  # a param is cut at 6,000 characters; config.yaml is whole
        options = _config_artifact(client, parent.info.run_id, where)["search_space"]["options"]
    space = {"name": params.get("search_space.name", ""), "options": options}
    try:
        return build_space(parse_config({"name": "replay", "search_space": space}))
    except UserError as e:
        raise CurveError(f"{where}: its search space cannot be built here ({e})") from None


def _config_artifact(client: Any, run_id: str, where: str) -> dict:
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "config.yaml", tmp)
        except Exception as e:
            raise CurveError(
                f"{where}: cannot read its config.yaml ({first_line(e, 200)})"
            ) from None
        return yaml.safe_load(Path(path).read_text())


def _file_safe(name: str) -> str:
    """The source's name goes into file names (regret_<source>_w<workers>.png)."""
    return re.sub(r"[^\w.-]+", "_", name)
