"""Our Optuna adapter: the pure conversion and concurrent ask/tell."""

from __future__ import annotations

import json
import random

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from orchestrator.searchers.optuna import OptunaStrategy, to_optuna
from search_spaces import Choice, Float, Int, MLPSpace, Repeat, Space


def test_to_optuna_converts_only_the_active_decisions():
    space = MLPSpace(max_depth=4)
    arch = {
        "layers": [{"width": 64}, {"width": 128}],
        "activation": "relu",
        "dropout": 0.1,
        "lr": 0.001,
        "batch_size": 32,
    }
    params, dists = to_optuna(space, arch)
    assert params == {
        "layers": 2,
        "layers.0.width": 64,
        "layers.1.width": 128,
        "activation": "relu",
        "dropout": 0.1,
        "lr": 0.001,
        "batch_size": 32,
    }
    assert dists["layers"] == IntDistribution(1, 4)
    assert dists["layers.0.width"] == CategoricalDistribution([32, 64, 128, 256, 512])
    assert dists["lr"] == FloatDistribution(1e-4, 3e-2, log=True)
    assert "layers.2.width" not in dists  # conditional on depth


def test_to_optuna_roundtrips_through_a_real_study():
    space = Space({"n": Int(1, 5), "x": Float(0, 1), "c": Choice(["a", "b"])})
    study = optuna.create_study()
    rng = random.Random(0)
    for _ in range(5):
        arch = space.sample(rng)
        params, dists = to_optuna(space, arch)
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=1.0))
    assert len(study.trials) == 5


def test_to_optuna_rejects_foreign_architectures():
    space = Space({"c": Choice(["a", "b"])})
    with pytest.raises(KeyError):
        to_optuna(space, {"d": "a"})


def test_many_asks_before_any_tell_are_all_distinct_trials():
    """Concurrency: Ray asks for several configs before any trial finishes."""
    space = Space(
        {"layers": Repeat(1, 3, {"w": Choice([8, 16, 32])}), "lr": Float(1e-4, 1e-1, log=True)}
    )
    strat = OptunaStrategy(space, seed=0)
    asked = [strat.ask() for _ in range(6)]
    assert len(strat.study.trials) == 6
    assert all(t.state == optuna.trial.TrialState.RUNNING for t in strat.study.trials)
    for i, arch in enumerate(reversed(asked)):  # results arrive out of order
        strat.tell(arch, None if i == 0 else float(i))
    states = [t.state.name for t in strat.study.trials]
    assert states.count("COMPLETE") == 5 and states.count("FAIL") == 1


def test_tpe_learns_and_its_state_roundtrips():
    space = Space({"x": Float(-5, 5), "c": Choice(["good", "bad"])})
    strat = OptunaStrategy(space, mode="min", seed=3)
    for _ in range(30):
        arch = strat.ask()
        strat.tell(arch, arch["x"] ** 2 + (0 if arch["c"] == "good" else 10))
    best = strat.study.best_trial.params
    assert best["c"] == "good" and abs(best["x"]) < 1.5
    state = json.loads(json.dumps(strat.state()))
    clone = OptunaStrategy(space, mode="min", seed=3)
    clone.load_state(state)
    assert [clone.ask() for _ in range(3)] == [strat.ask() for _ in range(3)]


def test_multi_objective_nsga2():
    space = Space({"x": Float(0, 1)})
    strat = OptunaStrategy(space, sampler="nsga2", directions=["maximize", "minimize"], seed=0)
    for _ in range(10):
        arch = strat.ask()
        strat.tell(arch, [arch["x"], arch["x"] ** 2])
    assert len(strat.study.best_trials) >= 1
