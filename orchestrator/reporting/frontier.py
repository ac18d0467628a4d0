"""The Pareto front of a finished multi-objective search: CSV, PNG and hypervolume."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from orchestrator.core.pareto import hypervolume_2d, pareto_front

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
    front[keep].to_csv(csv_path, index=False)
    png_path = os.path.join(out_dir, FRONT_PNG)
    _plot(done, front, names, modes, png_path)
    return metrics, [csv_path, png_path]


def _plot(done: pd.DataFrame, front: pd.DataFrame, names: list[str], modes: list[str], path: str):
    from matplotlib.figure import Figure

    x, y = names[0], names[1]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.scatter(done[x], done[y], s=14, color="0.65", label="trials")
    ordered = front.sort_values(x)
    ax.step(ordered[x], ordered[y], where="post" if modes[1] == "min" else "pre", color="C3")
    ax.scatter(ordered[x], ordered[y], s=30, color="C3", zorder=3, label="Pareto front")
    for row in ordered.itertuples():
        ax.annotate(row.trial, (getattr(row, x), getattr(row, y)), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xlabel(f"{x} ({'higher' if modes[0] == 'max' else 'lower'} is better)")
    ax.set_ylabel(f"{y} ({'higher' if modes[1] == 'max' else 'lower'} is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def objective_names(cfg: Any) -> tuple[list[str], list[str]]:
    return [cfg.metric, *(o.metric for o in cfg.objectives)], [
        cfg.mode,
        *(o.mode for o in cfg.objectives),
    ]
