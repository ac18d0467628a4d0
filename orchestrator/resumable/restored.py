"""The search's own objects that Ray unpickles when it restores a Tuner.

Ray restores the searcher, the callbacks and the stopper of a search from its experiment folder
and keeps them inside the Tuner. Each of nasorch's registers itself here as it is unpickled, so
`nasorch resume` finds them without reaching into the Tuner's private attributes.
"""

from __future__ import annotations

from typing import Any

_restored: dict[str, Any] = {}


def register(kind: str, obj: Any) -> None:
    """Called from `__setstate__` of the searcher adapter, the tracker, the progress line and
    the metric check."""
    _restored[kind] = obj


def take(kind: str) -> Any:
    """The object of that kind restored last (and forget it), or None."""
    return _restored.pop(kind, None)


def peek(kind: str) -> Any:
    """The object of that kind registered last, kept (the progress line reads the budget)."""
    return _restored.get(kind)


def clear() -> None:
    _restored.clear()
