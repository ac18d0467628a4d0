"""Objects Ray pickles into a search's snapshot (the searcher adapter, the tracker, the progress
line, the budgets), upgraded explicitly when an older nasorch wrote them.

Each such class has a STATE_VERSION (its pickled form's version) and STATE_UPGRADES: version v
-> a function turning a version v-1 state (the pickled `__dict__`) into a version v one.
`__getstate__` stamps the state with its version (`stamped`), `__setstate__` brings an older
state up to date (`upgraded`), so a default for "a snapshot by an older nasorch" is written once,
at the version that added the attribute, instead of as a `getattr` default wherever it is read.
A state without a stamp was written before versions existed: version 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

KEY = "nasorch_state_version"

Upgrade = Callable[[dict[str, Any]], None]


def stamped(obj: Any, state: dict[str, Any]) -> dict[str, Any]:
    """`state` (what `obj` pickles) with `obj`'s class's STATE_VERSION in it."""
    return {**state, KEY: type(obj).STATE_VERSION}


def upgraded(obj: Any, state: dict[str, Any]) -> dict[str, Any]:
    """`state` brought to `obj`'s class's STATE_VERSION by its STATE_UPGRADES, in order, and
    without the stamp (the attributes to set on the unpickled object)."""
    state = dict(state)
    version = state.pop(KEY, 0)
    upgrades: Mapping[int, Upgrade] = type(obj).STATE_UPGRADES
    for step in range(version + 1, type(obj).STATE_VERSION + 1):
        upgrades[step](state)
    return state


def defaults(**values: Callable[[], Any]) -> Upgrade:
    """An upgrade that adds attributes a state lacks: name -> a factory of its value (a
    factory, so that no two unpickled objects share one mutable default)."""

    def upgrade(state: dict[str, Any]) -> None:
        for name, make in values.items():
            if name not in state:
                state[name] = make()

    return upgrade
