"""Pareto fronts and 2-d hypervolume for multi-objective searches (pure functions; their CSV and
plot are written by reporting/frontier.py).

`modes` gives each objective's better direction ("max" or "min"), so accuracy and parameter
count can be mixed without the caller flipping signs.
"""

from __future__ import annotations

from collections.abc import Sequence

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
