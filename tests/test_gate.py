"""The gate: costing, hard constraints and duplicate reuse, before any trial starts."""

from __future__ import annotations

import random

import pytest

from orchestrator.core.gate import Gate
from search_spaces import Choice, MLPSpace, NB201Space, Space


def test_duplicates_are_answered_from_earlier_results():
    space = Space({"a": Choice(["x", "y"])})
    gate = Gate(space)
    first = gate.check({"a": "x"})
    assert first.run
    twin = gate.check({"a": "x"})  # still training: told when the first one ends
    assert not twin.run and twin.reason == "duplicate in flight"
    assert gate.done({"a": "x"}, 0.7) == [{"a": "x"}]
    again = gate.check({"a": "x"})
    assert not again.run and again.value == 0.7
    assert gate.summary()["duplicates_reused"] == 2


def test_dedupe_off_trains_everything():
    gate = Gate(Space({"a": Choice(["x", "y"])}), dedupe=False)
    assert gate.check({"a": "x"}).run and gate.check({"a": "x"}).run


def test_constraints_reject_before_training_and_are_counted():
    space = MLPSpace(max_depth=2, widths=[16, 512])
    gate = Gate(space, limits={"max_params": 5000}, input_shape=(64,), num_classes=10)
    rng = random.Random(0)
    verdicts = [gate.check(space.sample(rng)) for _ in range(20)]
    ran = [v for v in verdicts if v.run]
    assert ran and len(ran) < 20
    assert all(v.cost["num_params"] <= 5000 for v in ran)
    assert {"num_params", "flops", "latency_ms", "size_mb"} <= set(ran[0].cost)
    summary = gate.summary()
    assert summary["candidates_rejected"] == summary["rejected_max_params"] == 20 - len(ran)
    # the one message of search_spaces.cost_names.limit_violations, `nasorch check`'s as well
    assert gate.rejections[0]["reason"].startswith("constraints.max_params: num_params ")
    assert gate.rejections[0]["reason"].endswith(" parameters exceeds the limit 5,000")


def test_cost_comes_from_the_space_when_no_model_is_built():
    space = NB201Space()
    gate = Gate(space, limits={"max_params": 1e9})
    arch = space.sample(random.Random(1))
    assert gate.check(arch).cost == space.objectives(arch)
    with pytest.raises(ValueError, match="constraints.max_latency_ms"):
        Gate(space, limits={"max_latency_ms": 1.0}).check(arch)


def test_state_roundtrip():
    space = Space({"a": Choice(["x", "y"])})
    gate = Gate(space)
    gate.check({"a": "x"})
    gate.done({"a": "x"}, 1.0)
    clone = Gate(space)
    clone.load_state(gate.state())
    assert clone.check({"a": "x"}).value == 1.0
