"""Pareto fronts written out: the CSV and the plot, for a finished search (`write_front`) and for
`nasorch bench`'s fronts per searcher. The fronts themselves are computed in core/pareto.py."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from orchestrator.core.pareto import Point, hypervolume_2d, pareto_front

FRONT_CSV = "pareto_front.csv"
FRONT_PNG = "pareto_front.png"


def write_front(
    trials: pd.DataFrame, names: list[str], modes: list[str], out_dir: str
) -> tuple[dict[str, float], list[str]]:
    """Front over the trials that did not error; returns (metrics, written file paths).

    The hypervolume (two objectives) is measured against the worst value seen in each
    objective, so it grows as the front moves away from the search's own nadir.
    """
    done = trials[trials["status"] != "errored"].dropna(subset=names)
    if not len(done):
        return {}, []
    points = done[names].astype(float).values.tolist()
    front = done.iloc[pareto_front(points, modes)]
    metrics: dict[str, float] = {"pareto_points": float(len(front))}
    if len(names) == 2:
        nadir = [min(col) if m == "max" else max(col) for col, m in zip(zip(*points), modes)]
        metrics["hypervolume"] = hypervolume_2d(front[names].values.tolist(), nadir, modes)
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, FRONT_CSV)
    keep = [c for c in ["trial", *names, "arch", "status", "run_id"] if c in front]
    rows = front[keep].astype(object).where(front[keep].notna(), None)  # empty, not "nan"
    write_front_csv(csv_path, rows.to_dict("records"), keep)
    png_path = os.path.join(out_dir, FRONT_PNG)
    ordered = front.sort_values(names[0])
    plot_fronts(
        png_path,
        {"Pareto front": ordered[names[:2]].values.tolist()},
        names[:2],
        modes[:2],
        trials=done[names[:2]].values.tolist(),
        point_names=ordered["trial"].tolist() if "trial" in ordered else None,
    )
    return metrics, [csv_path, png_path]


def write_front_csv(
    path: str | os.PathLike, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    """One row per front point (e.g. trial or searcher and seed, arch and the objectives)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def plot_fronts(
    path: str | os.PathLike,
    fronts: dict[str, Sequence[Point]],
    labels: Sequence[str],
    modes: Sequence[str],
    *,
    title: str | None = None,
    trials: Sequence[Point] | None = None,
    reference_front: Sequence[Point] | None = None,
    point_names: Sequence[str] | None = None,
) -> None:
    """Each named front as a step line with markers over two objectives (`labels`, `modes`);
    behind them every trial's point (`trials`) and a reference front (e.g. a whole table's) in
    grey. `point_names` label the points of a single front (a search's trial names)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    # The line holds each point's second objective over the first objective's values it still
    # reaches: rightwards when the first is minimised, leftwards when it is maximised.
    where = "post" if modes[0] == "min" else "pre"
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    if trials:
        ax.scatter(*zip(*trials, strict=True), s=14, color="0.65", label="trials")
    if reference_front:
        xs, ys = zip(*sorted(reference_front), strict=True)
        ax.step(xs, ys, where=where, color="0.6", lw=2.5, alpha=0.6, label="true front")
    for i, (name, pts) in enumerate(fronts.items()):
        if pts:
            xs, ys = zip(*sorted(pts), strict=True)
            ax.step(xs, ys, where=where, marker="o", ms=4, lw=1.2, color=f"C{i}", label=name)
    if point_names and len(fronts) == 1:
        for label, (x, y) in zip(point_names, next(iter(fronts.values())), strict=True):
            ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for axis, label, mode in zip((ax.set_xlabel, ax.set_ylabel), labels, modes, strict=False):
        axis(f"{label} ({'higher' if mode == 'max' else 'lower'} is better)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def objective_names(cfg: Any) -> tuple[list[str], list[str]]:
    return [cfg.metric, *(o.metric for o in cfg.objectives)], [
        cfg.mode,
        *(o.mode for o in cfg.objectives),
    ]
