"""Pareto fronts and 2-d hypervolume for multi-objective searches (pure functions).

`modes` gives each objective's better direction ("max" or "min"), so accuracy and parameter
count can be mixed without the caller flipping signs.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

Point = Sequence[float]


def _oriented(point: Point, modes: Sequence[str]) -> tuple[float, ...]:
    """The point with every objective turned into "smaller is better"."""
    return tuple(-v if m == "max" else v for v, m in zip(point, modes, strict=True))


def _check_modes(modes: Sequence[str]) -> None:
    bad = [m for m in modes if m not in ("max", "min")]
    if bad:
        raise ValueError(f"modes must be 'max' or 'min', got {bad[0]!r}")


def dominates(a: Point, b: Point, modes: Sequence[str]) -> bool:
    """`a` is at least as good as `b` in every objective and better in one."""
    oa, ob = _oriented(a, modes), _oriented(b, modes)
    return all(x <= y for x, y in zip(oa, ob, strict=True)) and oa != ob


def pareto_front(points: Sequence[Point], modes: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points, sorted by the first objective (best first).
    Duplicates of a front point are all kept, so no evaluated architecture is lost."""
    _check_modes(modes)
    oriented = [_oriented(p, modes) for p in points]
    order = sorted(range(len(points)), key=lambda i: oriented[i])
    front: list[int] = []
    for i in order:
        if not any(dominates(points[j], points[i], modes) for j in front):
            front.append(i)
    return front


def hypervolume_2d(front: Sequence[Point], reference: Point, modes: Sequence[str]) -> float:
    """Area dominated by `front` and bounded by `reference` (a point worse than the front in
    both objectives). Points that do not beat the reference in both objectives add nothing."""
    _check_modes(modes)
    if len(modes) != 2 or len(reference) != 2:
        raise ValueError("hypervolume_2d needs exactly two objectives")
    rx, ry = _oriented(reference, modes)
    pts = sorted(
        {
            _oriented(p, modes)
            for p in front
            if all(v < r for v, r in zip(_oriented(p, modes), (rx, ry), strict=True))
        }
    )
    area, best_y = 0.0, ry
    for x, y in pts:  # sweep along the first objective; each point adds a new strip below best_y
        if y < best_y:
            area += (rx - x) * (best_y - y)
            best_y = y
    return area


def write_front_csv(
    path: str | os.PathLike, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    """One row per front point (e.g. searcher, seed, arch and both objectives)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def plot_front_png(
    path: str | os.PathLike,
    fronts: dict[str, Sequence[Point]],
    labels: Sequence[str],
    title: str = "Pareto front",
    reference_front: Sequence[Point] | None = None,
) -> None:
    """Each named front as a step line with markers; `reference_front` (e.g. the whole table's)
    in grey behind them. `labels` name the two axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if reference_front:
        xs, ys = zip(*sorted(reference_front), strict=True)
        ax.step(xs, ys, where="post", color="0.6", lw=2.5, alpha=0.6, label="true front")
    for name, pts in fronts.items():
        if pts:
            xs, ys = zip(*sorted(pts), strict=True)
            ax.step(xs, ys, where="post", marker="o", ms=3, lw=1.2, label=name)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
