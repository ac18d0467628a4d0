"""Pictures of a search, logged on its parent run and written next to Ray's results.

The drawing functions are pure: a trials table (see `runner.trials_frame`) and per-trial metric
histories in, one PNG out. They use `Figure` objects, never pyplot, so nothing leaks into a
caller's matplotlib state and no GUI backend is ever touched. `log_search_plots` reads what it
needs from MLflow, so it draws exactly what the UI shows.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from orchestrator.core import tags as T

log = logging.getLogger(__name__)

History = Sequence[tuple[int, float]]  # (epoch, value), in epoch order
STATUS_STYLE = {  # how a trial's curve ends tells how the trial ended
    "completed": {"lw": 1.4, "ls": "-", "alpha": 0.9},
    "stopped_early": {"lw": 0.9, "ls": "--", "alpha": 0.6},
    "errored": {"lw": 0.9, "ls": ":", "alpha": 0.6},
}
END_MARKER = {"completed": "", "stopped_early": "x", "errored": "v"}


def best_so_far(values: Sequence[float], mode: str) -> list[float]:
    """The running best; NaN (a trial without a value) keeps the previous best."""
    out: list[float] = []
    best = math.nan
    for v in values:
        if v == v and (best != best or (v > best if mode == "max" else v < best)):
            best = v
        out.append(best)
    return out


def _save(fig: Figure, path: str | os.PathLike) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


def _scored(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    if not len(trials) or metric not in trials:
        return trials.iloc[0:0]
    ok = trials[trials["status"] != "errored"] if "status" in trials else trials
    return ok.dropna(subset=[metric])


def plot_best_so_far_trials(
    trials: pd.DataFrame, metric: str, mode: str, path: str | os.PathLike
) -> str:
    """Every trial's final value against its number, and the running best as a step line."""
    rows = trials.sort_values("trial") if len(trials) else trials
    values = [
        math.nan if s == "errored" or v is None else float(v)
        for v, s in zip(rows.get(metric, []), rows.get("status", []))
    ]
    x = list(range(1, len(values) + 1))
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.scatter(x, values, s=14, color="0.55", label="trial", zorder=2)
    ax.step(x, best_so_far(values, mode), where="post", lw=2, color="C0", label="best so far")
    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.set_title(f"Best {metric} so far, by trial")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if mode == "max" else "upper right", fontsize=8)
    return _save(fig, path)


def plot_best_so_far_time(
    trials: pd.DataFrame,
    metric: str,
    mode: str,
    end_seconds: Mapping[str, float],
    path: str | os.PathLike,
) -> str:
    """The running best against wall-clock time: each trial counts when it finished.
    `end_seconds` maps a trial's run id to seconds since the search started."""
    scored = _scored(trials, metric)
    points = sorted(
        (end_seconds[r], float(v))
        for r, v in zip(scored.get("run_id", []), scored.get(metric, []))
        if r in end_seconds
    )
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    if points:
        t, v = zip(*points)
        unit, scale = ("min", 60.0) if t[-1] > 300 else ("s", 1.0)
        t = [x / scale for x in t]
        ax.scatter(t, v, s=14, color="0.55", label="trial finished", zorder=2)
        ax.step(t, best_so_far(v, mode), where="post", lw=2, color="C1", label="best so far")
        ax.set_xlabel(f"wall-clock time since the search started ({unit})")
        ax.set_xlim(left=0)
        ax.legend(loc="lower right" if mode == "max" else "upper right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"Best {metric} so far, by time")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_learning_curves(
    histories: Mapping[str, History],
    statuses: Mapping[str, str],
    metric: str,
    path: str | os.PathLike,
    best: str | None = None,
) -> str:
    """All trials' curves in one plot. Early-stopped trials are thin dashed lines ending in an
    x, so what the scheduler cut is visible; the best trial is drawn on top, thick. Curves of
    one kind are one collection: a search of thousands of trials draws as fast as one of ten."""
    from matplotlib.collections import LineCollection

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    groups: dict[str, list[list[tuple[int, float]]]] = {}
    for name, points in histories.items():
        if points and name != best:
            groups.setdefault(statuses.get(name, "completed"), []).append(list(points))
    for status, curves in sorted(groups.items()):
        style = dict(STATUS_STYLE.get(status, STATUS_STYLE["completed"]))
        color = "C0" if status == "completed" else "0.5"
        label = status.replace("_", " ")
        ax.add_collection(LineCollection(curves, colors=color, label=label, **_line(style)))
        if END_MARKER.get(status):
            ends = [c[-1] for c in curves]
            ax.plot(*zip(*ends), END_MARKER[status], color=color, ms=5)
    if best is not None and histories.get(best):
        status = statuses.get(best, "completed")
        style = {**STATUS_STYLE.get(status, STATUS_STYLE["completed"]), "lw": 2.5, "alpha": 1.0}
        steps, values = zip(*histories[best])
        ax.plot(steps, values, color="C3", label=f"best ({best})", **style)
        if END_MARKER.get(status):
            ax.plot(steps[-1], values[-1], END_MARKER[status], color="C3", ms=5)
    ax.autoscale_view()
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.set_title(f"Learning curves ({len(histories)} trials)")
    ax.grid(alpha=0.3)
    if groups or best is not None:
        ax.legend(fontsize=8)
    return _save(fig, path)


def _line(style: Mapping[str, Any]) -> dict[str, Any]:
    """A Line2D style (lw, ls, alpha) as LineCollection arguments."""
    return {"linewidths": style["lw"], "linestyles": style["ls"], "alpha": style["alpha"]}


def plot_tradeoff(
    trials: pd.DataFrame, metric: str, mode: str, path: str | os.PathLike
) -> str | None:
    """Metric against model size with the Pareto front (better metric, fewer parameters)
    highlighted. None when the trials report no size or all have the same size."""
    scored = _scored(trials, metric)
    if "num_params" not in scored:
        return None
    scored = scored.dropna(subset=["num_params"])
    if len(scored) < 2 or scored["num_params"].nunique() < 2:
        return None
    from orchestrator.core.pareto import pareto_front

    points = list(zip(scored["num_params"].astype(float), scored[metric].astype(float)))
    front = sorted(points[i] for i in pareto_front(points, ["min", mode]))
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.scatter(*zip(*points), s=16, color="0.6", label="trial")
    ax.step(*zip(*front), where="post", marker="o", ms=5, lw=1.8, color="C2", label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against model size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def log_search_plots(
    client: Any,
    parent_run_id: str,
    experiment_id: str,
    trials: pd.DataFrame,
    metric: str,
    mode: str,
    out_dir: str | os.PathLike | None,
    seen: Mapping[str, Mapping] | None = None,
) -> list[str]:
    """Draw every plot of a finished search from its MLflow records, write the PNGs into
    `out_dir` (a fresh temporary folder when None) and log them on the parent run under
    `plots/`. Returns the files written. Never raises: a plot is not worth a failed search.

    `seen` (the tracker's `seen()`: curves and end times of the trials it saw whole) spares
    reading every child run back when it covers all trials; a resumed search reads MLflow."""
    try:
        return _draw_and_log(
            client, parent_run_id, experiment_id, trials, metric, mode, out_dir, seen
        )
    except Exception as e:
        log.warning("nasorch: could not draw the search's plots: %s: %s", type(e).__name__, e)
        return []


def _draw_and_log(client, parent_run_id, experiment_id, trials, metric, mode, out_dir, seen):
    """The body of log_search_plots, which adds the never-raise guarantee."""
    import tempfile

    out = str(out_dir) if out_dir else tempfile.mkdtemp(prefix="nasorch-plots-")
    os.makedirs(out, exist_ok=True)
    start = client.get_run(parent_run_id).info.start_time or 0
    if seen and len(trials) and set(trials["trial_id"]) <= set(seen["ended"]):
        rows = list(zip(trials["trial_id"], trials["trial"], trials["run_id"]))
        end_seconds = {run: seen["ended"][t] - start / 1000.0 for t, _, run in rows}
        statuses = dict(zip(trials["trial"], trials["status"]))
        histories = {name: sorted(seen["curves"][t]) for t, name, _ in rows}
    else:
        end_seconds, statuses, histories = _read_back(
            client, experiment_id, parent_run_id, start, metric
        )
    scored = _scored(trials, metric)
    best = None
    if len(scored):
        idx = scored[metric].idxmax() if mode == "max" else scored[metric].idxmin()
        best = scored.loc[idx, "trial"]
    files = [
        plot_best_so_far_trials(trials, metric, mode, os.path.join(out, "best_so_far_trials.png")),
        plot_best_so_far_time(
            trials, metric, mode, end_seconds, os.path.join(out, "best_so_far_time.png")
        ),
        plot_learning_curves(
            histories, statuses, metric, os.path.join(out, "learning_curves.png"), best
        ),
    ]
    tradeoff = plot_tradeoff(trials, metric, mode, os.path.join(out, "size_tradeoff.png"))
    files += [tradeoff] if tradeoff else []
    for f in files:
        client.log_artifact(parent_run_id, f, "plots")
    return files


def _read_back(client, experiment_id, parent_run_id, start, metric) -> tuple[dict, dict, dict]:
    """End times (by run id), statuses and curves (by trial name) from the child runs."""
    children = child_runs(client, experiment_id, parent_run_id)
    end_seconds = {
        r.info.run_id: (r.info.end_time - start) / 1000.0 for r in children if r.info.end_time
    }
    names = {r.info.run_id: r.info.run_name.split(" ")[0] for r in children}
    statuses = {names[r.info.run_id]: r.data.tags.get(T.STATUS, "") for r in children}
    histories = {
        names[r.info.run_id]: [
            (m.step, m.value)
            for m in sorted(client.get_metric_history(r.info.run_id, metric), key=lambda m: m.step)
        ]
        for r in children
    }
    return end_seconds, statuses, histories


def child_runs(client: Any, experiment_id: str, parent_run_id: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
            max_results=1000,
            page_token=token,
        )
        runs += list(page)
        token = page.token
        if not token:
            return runs
