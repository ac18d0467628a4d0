"""Pickled search objects carry a state version; a state an older nasorch wrote (a dict without
the attributes added since) is upgraded explicitly by resumable/versioned.py."""

from __future__ import annotations

import io
import pickle

import pytest

from orchestrator.core.gate import Gate
from orchestrator.execution.budget import AcceleratorBudget, TimeBudget
from orchestrator.execution.metric_check import MetricCheck
from orchestrator.execution.progress import Progress
from orchestrator.resumable import restored, versioned
from orchestrator.searchers import STRATEGIES
from orchestrator.searchers.tune_adapter import StrategySearcher
from orchestrator.tracking.events import DeviceUse
from orchestrator.tracking.mlflow_tracker import MlflowTracker
from search_spaces import SEARCH_SPACES


@pytest.fixture(autouse=True)
def _forget_restored():
    yield
    restored.clear()


class Thing:
    STATE_VERSION = 2
    STATE_UPGRADES = {
        1: versioned.defaults(items=list),
        2: lambda state: state.update(total=sum(state["items"])),  # derived from version 1's
    }


def test_upgrades_run_in_order_from_the_state_s_version():
    thing = Thing()
    assert versioned.upgraded(thing, {"name": "a"}) == {"name": "a", "items": [], "total": 0}
    stamped_1 = {"name": "b", "items": [1, 2], versioned.KEY: 1}
    assert versioned.upgraded(thing, stamped_1) == {"name": "b", "items": [1, 2], "total": 3}
    current = versioned.stamped(thing, {"name": "c", "items": [5], "total": 7})
    assert current[versioned.KEY] == 2
    assert versioned.upgraded(thing, current) == {"name": "c", "items": [5], "total": 7}
    a, b = versioned.upgraded(thing, {}), versioned.upgraded(thing, {})
    assert a["items"] is not b["items"]  # a factory per state, never one shared default


def _searcher() -> StrategySearcher:
    space = SEARCH_SPACES["mlp"](max_depth=2, widths=[32, 64])
    strategy = STRATEGIES["random"](space, seed=0)
    return StrategySearcher(strategy, metric="acc", mode="max", base_config={}, gate=Gate(space))


def _older(state: dict, *added: str) -> dict:
    """`state` as a nasorch before versions (and before `added`) pickled it."""
    return {k: v for k, v in state.items() if k not in added and k != versioned.KEY}


def test_the_searcher_adapter_upgrades_a_state_without_warm_start_seeds():
    searcher = _searcher()
    searcher.seeds = [{"edges": 1}]
    again = pickle.loads(pickle.dumps(searcher))
    assert again.seeds == [{"edges": 1}] and versioned.KEY not in again.__dict__
    old = StrategySearcher.__new__(StrategySearcher)
    old.__setstate__(_older(searcher.__getstate__(), "seeds", "seed_turn"))
    assert old.seeds == [] and old.seed_turn is None
    assert old.suggest("t1")["arch"]  # and it runs


def test_the_progress_line_upgrades_a_state_without_best_or_enabled():
    line = Progress("acc", "max", total=4, stream=io.StringIO())
    old = Progress.__new__(Progress)
    state = _older(line.__getstate__(), "best", "enabled", "_idle_since")
    old.__setstate__(state)
    assert old.best is None and old.enabled is True and old._idle_since is None
    assert not old._starved(0, [])  # reads _idle_since without a getattr default


def test_the_tracker_upgrades_a_state_without_the_attributes_added_since(monkeypatch):
    monkeypatch.setattr(MlflowTracker, "_start", lambda self: None)  # no writer process
    oldest = {"run_ids": {"a": "r1"}, "state_path": None, "statuses": {}, "last_error": None}
    tracker = MlflowTracker.__new__(MlflowTracker)
    tracker.__setstate__(dict(oldest))
    assert (tracker.scheduler, tracker.metric, tracker.first_error) == (None, None, None)
    assert tracker.storage == "" and tracker.reused == [] and tracker.recorded_ends == {}
    assert isinstance(tracker.devices, DeviceUse) and tracker.run_ids == {"a": "r1"}
    # a current state keeps what it has: the stamp says nothing is missing
    current = versioned.stamped(tracker, {**oldest, "first_error": ("boom", "log"),
                                          "storage": "s3://b", "metric": "acc"})  # fmt: skip
    for name in ("scheduler", "devices", "reused", "recorded_ends"):
        current[name] = getattr(tracker, name)
    again = MlflowTracker.__new__(MlflowTracker)
    again.__setstate__(current)
    assert again.first_error == ("boom", "log") and again.storage == "s3://b"


@pytest.mark.parametrize(
    "make",
    [lambda: TimeBudget(60.0), lambda: AcceleratorBudget(1.0, 0.5), lambda: MetricCheck("acc")],
)
def test_stoppers_are_stamped_and_read_back_unstamped(make):
    stopper = make()
    state = stopper.__getstate__()
    assert state[versioned.KEY] == type(stopper).STATE_VERSION == 0
    again = pickle.loads(pickle.dumps(stopper))
    assert versioned.KEY not in again.__dict__
    assert again.stop_all() is False
    older = type(stopper).__new__(type(stopper))
    older.__setstate__(_older(state))  # before versions: version 0, nothing to add
    assert older.__dict__ == {k: v for k, v in state.items() if k != versioned.KEY}
