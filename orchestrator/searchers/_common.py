"""Small helpers shared by the single-objective searchers."""

from __future__ import annotations

from orchestrator.searchers.base import Value


def primary(value: Value) -> float | None:
    """The objective a single-objective searcher optimises: the value, or the first of several
    (so a multi-objective run can still be driven by, and compared with, these searchers)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return float(value[0])
