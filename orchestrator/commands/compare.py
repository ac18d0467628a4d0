"""`nasorch compare`: several searches side by side, read from MLflow alone.

A search is its parent run (tag nasorch.role=search) and that run's child runs; everything here
comes from their params, tags, metrics and times, so it works as well on a remote tracking
server as on the local SQLite store, and on searches run on other machines.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.config import RESULTS_DIR, default_tracking_uri
from orchestrator.core import tags as T
from orchestrator.core.errors import UserError
from orchestrator.reporting.leaderboard import to_markdown
from orchestrator.reporting.plots import best_so_far, child_runs
from orchestrator.tracking.session import existing_client, runs_page_url

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
SEARCH_FILTER = f"tags.`{T.ROLE}` = '{T.SEARCH}'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "searches",
        nargs="+",
        metavar="SEARCH",
        help="experiment names or ids (every search in them) or parent run ids",
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="default: MLFLOW_TRACKING_URI or ./nasorch_results/mlflow.db",
    )
    parser.add_argument("--metric", default=None, help="default: each search's own metric")
    parser.add_argument(
        "--mode", choices=["max", "min"], default=None, help="default: the config's"
    )
    parser.add_argument(
        "--out", default=f"{RESULTS_DIR}/compare", help="folder for comparison.csv/.md/.png"
    )


def execute(args: argparse.Namespace) -> int:
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    client = existing_client(uri, field="--tracking-uri")
    parents = resolve_searches(client, args.searches, uri)
    summaries = [summarize(client, p, args.metric, args.mode) for p in parents]
    table = comparison_table(summaries)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "comparison.csv", index=False)
    shown = printable(table)
    (out / "comparison.md").write_text(to_markdown(shown) + "\n")
    plot_comparison(summaries, out / "comparison.png")
    print(to_markdown(shown))
    if not any(s["gpu_per_trial"] for s in summaries):
        print("\naccelerator hours are 0: these searches ran on CPU (resources.gpu = 0)")
    print(f"\nSaved {out / 'comparison.csv'}, {out / 'comparison.md'}, {out / 'comparison.png'}")
    return 0


# ---- reading MLflow ------------------------------------------------------------------------


def resolve_searches(client: Any, refs: list[str], uri: str) -> list[Any]:
    """Parent runs for experiment names / ids (all their searches) and run ids, in order."""
    from mlflow.exceptions import MlflowException

    found: dict[str, Any] = {}
    for ref in refs:
        runs: list[Any] = []
        if RUN_ID.match(ref):
            try:
                run = client.get_run(ref)
            except MlflowException:
                run = None
            if run is not None:  # a trial's run id stands for its search
                parent = run.data.tags.get("mlflow.parentRunId")
                runs = [client.get_run(parent) if parent else run]
                if runs[0].data.tags.get(T.ROLE) != "search":
                    raise UserError(f"{ref}: run is not a nasorch search (tag {T.ROLE})")
        if not runs:
            exp = _experiment(client, ref)
            if exp is None:
                raise UserError(f"{ref}: no experiment or search run with that name or id in {uri}")
            runs = list(
                client.search_runs(
                    [exp.experiment_id], SEARCH_FILTER, order_by=["attributes.start_time ASC"]
                )
            )
            if not runs:
                raise UserError(f"{ref}: experiment {exp.name!r} holds no nasorch search")
        found.update((r.info.run_id, r) for r in runs)
    return list(found.values())


def _experiment(client: Any, ref: str) -> Any:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(ref)
    if exp is None and ref.isdigit():
        try:
            exp = client.get_experiment(ref)
        except MlflowException:
            exp = None
    return exp


def summarize(client: Any, parent: Any, metric: str | None = None, mode: str | None = None) -> dict:
    """One search as a dict: who searched, how it went, what it cost."""
    params, tags, info = parent.data.params, parent.data.tags, parent.info
    metric = metric or params.get("metric") or "val_accuracy"
    mode = mode or params.get("mode") or "max"
    gpu = float(params.get("resources.gpu") or 0)
    start = info.start_time or 0
    end = info.end_time or int(time.time() * 1000)  # a running search: its time so far
    children = sorted(child_runs(client, info.experiment_id, info.run_id), key=_end_time)
    scored = [
        (c, c.data.metrics[metric])
        for c in children
        if metric in c.data.metrics and c.data.tags.get(T.STATUS) != "errored"
    ]
    best_run, best = None, math.nan
    if scored:
        pick = max if mode == "max" else min
        best_run, best = pick(scored, key=lambda cv: cv[1])
    statuses = [c.data.tags.get(T.STATUS, "") for c in children]
    epochs = [int(c.data.tags.get(T.EPOCHS) or 0) for c in children]
    busy_ms = sum(max(0, (c.info.end_time or end) - c.info.start_time) for c in children)
    return {
        "search": info.run_name,
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "searcher": tags.get(T.SEARCHER, ""),
        "scheduler": tags.get(T.SCHEDULER, ""),
        "status": info.status,
        "metric": metric,
        "mode": mode,
        "trials": len(children),
        "stopped_early": statuses.count("stopped_early"),
        "errored": statuses.count("errored"),
        "best": best,
        "best_trial": best_run.info.run_name.split(" ")[0] if best_run else "",
        "time_to_best_s": (_end_time(best_run) - start) / 1000 if best_run else math.nan,
        "total_epochs": sum(epochs) or int(parent.data.metrics.get("total_epochs", 0)),
        "wall_time_s": (end - start) / 1000,
        "gpu_per_trial": gpu,
        "accelerator_hours": busy_ms / 3.6e6 * gpu,
        # (seconds since the search started, value) as trials finished: the best-so-far curve
        "curve": [((_end_time(c) - start) / 1000, v) for c, v in scored],
    }


def _end_time(run: Any) -> int:
    return run.info.end_time or run.info.start_time or 0


# ---- the table and the picture ---------------------------------------------------------------


def comparison_table(summaries: list[dict]) -> pd.DataFrame:
    """One row per search. With one metric everywhere the column is named after it."""
    frame = pd.DataFrame([{k: v for k, v in s.items() if k != "curve"} for s in summaries])
    metrics = frame["metric"].unique()
    if len(metrics) == 1:
        frame = frame.rename(columns={"best": f"best_{metrics[0]}"}).drop(columns=["metric"])
    return frame


def printable(table: pd.DataFrame) -> pd.DataFrame:
    """The table for people: durations with units, ids and bookkeeping left out."""
    shown = table.drop(columns=["run_id", "experiment_id", "status", "mode", "gpu_per_trial"])
    for col in ("wall_time_s", "time_to_best_s"):
        shown[col.removesuffix("_s")] = shown.pop(col).map(_duration)
    shown["accelerator_hours"] = shown.pop("accelerator_hours").map(lambda h: f"{h:.2f}")
    return shown.rename(columns=lambda c: c.replace("_", " "))


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return ""
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def plot_comparison(summaries: list[dict], path: str | os.PathLike) -> str:
    """`comparison_figure` saved to `path`."""
    comparison_figure(summaries).savefig(path, dpi=110)
    return str(path)


def comparison_figure(summaries: list[dict]) -> Any:
    """Left: every trial's value as a small dot on its search's row and the search's best as a
    large labelled dot, on an axis that spans all the trials, so a gap between two searches'
    bests is seen against the spread of what they tried rather than blown up by an axis zoomed
    to the bests. Right: each search's best-so-far against wall-clock time."""
    from matplotlib.figure import Figure

    labels = [f"{i}. {s['searcher']}+{s['scheduler']}" for i, s in enumerate(summaries, 1)]
    metrics = {s["metric"] for s in summaries}
    ylabel = metrics.pop() if len(metrics) == 1 else "best (each search's metric)"
    fig = Figure(figsize=(11, 0.5 * len(summaries) + 3.5))
    dots, curves = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    colors = [f"C{i % 10}" for i in range(len(summaries))]
    for row, (s, color) in enumerate(zip(summaries, colors)):
        values = [v for _, v in s["curve"]]
        if values:  # a fixed spread across the row, so equal values do not hide each other
            offsets = [row + 0.3 * ((i * 0.618034) % 1 - 0.5) for i in range(len(values))]
            dots.scatter(values, offsets, s=14, color=color, alpha=0.5, linewidths=0,
                         gid=f"trials-{row}")  # fmt: skip
        if s["best"] == s["best"]:
            dots.scatter([s["best"]], [row], s=80, color=color, edgecolors="black", zorder=3,
                         gid=f"best-{row}")  # fmt: skip
            dots.annotate(f"{s['best']:.4g}", (s["best"], row), xytext=(0, 8),
                          textcoords="offset points", ha="center", fontsize=8)  # fmt: skip
    dots.set_yticks(range(len(labels)), labels)
    dots.set_ylim(len(labels) - 0.5, -0.5)  # the first search on top
    dots.set_xlabel(f"{ylabel}: every trial (small), the best (large)")
    dots.set_title("Trials and best per search")
    dots.grid(axis="x", alpha=0.3)
    for s, label, color in zip(summaries, labels, colors):
        if s["curve"]:
            t, v = zip(*s["curve"])
            curves.step(t, best_so_far(v, s["mode"]), where="post", color=color, lw=1.8,
                        label=label)  # fmt: skip
    curves.set_xlabel("wall-clock time since the search started (s)")
    curves.set_ylabel(f"best {ylabel} so far")
    curves.set_title("Best so far, by time")
    curves.grid(alpha=0.3)
    if any(s["curve"] for s in summaries):
        curves.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- `nasorch ui` --------------------------------------------------------------------------


def newest_search_url(uri: str, base: str) -> str | None:
    """The runs page of the experiment holding the newest nasorch search, or None."""
    try:
        client = existing_client(uri, field="--tracking-uri")
        exps = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        runs = client.search_runs(
            exps, SEARCH_FILTER, order_by=["attributes.start_time DESC"], max_results=1
        )
    except Exception:  # no store yet, or one we cannot read: the plain address will do
        return None
    return runs_page_url(base, runs[0].info.experiment_id) if runs else None
