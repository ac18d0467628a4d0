"""Validation of built-in spaces' constructor options, with messages naming option and values."""

from __future__ import annotations

from typing import Any


def check_subset(option: str, values: Any, allowed: tuple) -> None:
    """`values` is a non-empty list drawn from `allowed`; bools and ints do not stand in for each
    other."""
    if isinstance(values, (str, bytes)) or not values:
        raise ValueError(f"{option}: needs a non-empty list of values from {list(allowed)}")
    want_bool = isinstance(allowed[0], bool)
    bad = [v for v in values if v not in allowed or isinstance(v, bool) != want_bool]
    if bad:
        raise ValueError(f"{option}: {bad[0]!r} is not one of {list(allowed)}")
    _check_distinct(option, values)


def check_positive_ints(option: str, values: Any) -> list[int]:
    """`values` is a non-empty list of positive integers; returned as a list."""
    if isinstance(values, (str, bytes)) or not values:
        raise ValueError(f"{option}: needs a non-empty list of positive integers, got {values!r}")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise ValueError(f"{option}: {bad[0]!r} is not a positive integer")
    _check_distinct(option, values)
    return list(values)


def _check_distinct(option: str, values: Any) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{option}: values must be distinct, got {list(values)}")


def check_int(option: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{option} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_range(option: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """A `[low, high]` pair inside the allowed interval, low <= high."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a pair [low, high], got {value!r}") from None
    if not low <= a <= b <= high:
        raise ValueError(f"{option} must satisfy {low} <= low <= high <= {high}, got [{a}, {b}]")
    return a, b
