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


def _front(points: dict[int, tuple[float, float]], signs: tuple[int, int]) -> set[int]:
    """Numbers of the non-dominated points; `signs` +1 maximises an objective, -1 minimises it."""

    def dominates(a, b):
        a = [s * v for s, v in zip(signs, a)]
        b = [s * v for s, v in zip(signs, b)]
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return {n for n, p in points.items() if not any(dominates(q, p) for q in points.values())}


def test_multi_objective_nsga2_front_and_directions():
    """Conflicting objectives: maximise x, minimise x^2 + y. The study's front must be the
    non-dominated set of the told values under these directions, not every point."""
    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    strat = OptunaStrategy(
        space,
        sampler="nsga2",
        sampler_options={"population_size": 10},
        directions=["maximize", "minimize"],
        seed=0,
    )
    assert isinstance(strat.study.sampler, optuna.samplers.NSGAIISampler)
    told = {}
    for _ in range(60):
        arch = strat.ask()
        values = (arch["x"], arch["x"] ** 2 + arch["y"])
        strat.tell(arch, list(values))
        told[strat.study.trials[-1].number] = values
    assert [tuple(t.values) for t in strat.study.trials] == list(told.values())

    expected = _front(told, (1, -1))
    assert {t.number for t in strat.study.best_trials} == expected
    assert 1 < len(expected) < len(told) // 2  # a real trade-off, and most points are dominated
    assert _front(told, (1, 1)) != expected  # the directions matter to the front

    # NSGA-II selects towards the front: later generations waste little on y (uniform: 0.5).
    ys = [t.params["y"] for t in strat.study.trials]
    assert sum(ys[-20:]) / 20 < 0.4

    # A point better in both objectives than a front member dominates it, and only that one.
    member = max(expected, key=lambda n: strat.study.trials[n].params["y"])
    x, f2 = told[member]
    better = {"x": x + 1e-3, "y": 0.0}
    values = (better["x"], better["x"] ** 2)
    assert values[0] > x and values[1] < f2
    strat.tell(better, list(values))  # not asked for: recorded as it is told
    told[len(strat.study.trials) - 1] = values
    front = {t.number for t in strat.study.best_trials}
    assert member not in front and len(strat.study.trials) - 1 in front
    assert front == _front(told, (1, -1))


def test_tpe_history_is_bounded_keeping_the_best_and_pending_trials():
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    strategy = OptunaStrategy(space, seed=0, max_history=50)
    rng = random.Random(0)
    running = [strategy.ask() for _ in range(8)]  # asked before any rebuild
    told = []
    for _ in range(300):
        arch = running.pop(0)
        value = -((arch["x"] - 0.3) ** 2) - (arch["y"] - 0.7) ** 2 + rng.gauss(0, 1e-3)
        strategy.tell(arch, value)
        told.append(value)
        running.append(strategy.ask())
    finished = strategy.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert 50 <= len(finished) <= 75  # rebuilt past 1.5 x max_history, back to max_history
    # Every trial told, including those asked before a rebuild, reached the study; the 25
    # best ever told are all still there (TPE's "good" group is unchanged by the bound).
    kept = {t.value for t in finished}
    assert set(sorted(told)[-25:]) <= kept
    # The bounded study resumes exactly.
    restored = OptunaStrategy(space, seed=0, max_history=50)
    restored.load_state(json.loads(json.dumps(strategy.state())))
    assert restored.ask() == strategy.ask()


def test_history_bound_applies_to_tpe_with_one_objective_cmaes_and_nsga2():
    space = Space({"x": Float(0.0, 1.0)})
    assert OptunaStrategy(space, sampler="tpe").max_history == 500
    assert OptunaStrategy(space, sampler="cmaes").max_history == 500
    assert OptunaStrategy(space, sampler="nsga2", directions=["maximize"] * 2).max_history == 500
    assert OptunaStrategy(space, directions=["maximize", "minimize"]).max_history is None
    assert OptunaStrategy(space, sampler="qmc").max_history is None
    with pytest.raises(ValueError, match="max_history must be >= 50"):
        OptunaStrategy(space, max_history=10)


@pytest.mark.parametrize("sampler", ["cmaes", "nsga2"])
def test_generational_samplers_go_on_from_their_generation_across_a_rebuild(sampler):
    """A bounded CMA-ES or NSGA-II study is rebuilt from its latest trials and its best, with
    the attributes their samplers keep there (the generation, CMA-ES's optimizer), and trials
    asked before the rebuild keep theirs: generations rise as they do unbounded, and CMA-ES
    converges."""
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    options = {"population_size": 10} if sampler == "nsga2" else {"popsize": 6}
    key = "NSGAIISampler:generation" if sampler == "nsga2" else "cma:generation"

    def run(max_history: int | None) -> tuple[OptunaStrategy, list[int]]:
        strategy = OptunaStrategy(space, seed=0, sampler=sampler, max_history=max_history,
                                  sampler_options=options)  # fmt: skip
        running = [strategy.ask() for _ in range(6)]
        generations = []
        for _ in range(400):
            arch = running.pop(0)
            strategy.tell(arch, -((arch["x"] - 0.3) ** 2) - (arch["y"] - 0.7) ** 2)
            done = strategy.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
            generations.append(max(t.system_attrs.get(key, -1) for t in done))
            running.append(strategy.ask())
        return strategy, generations

    bounded, generations = run(50)
    _, unbounded = run(None)
    assert len(bounded.study.trials) < 120  # rebuilt, more than once
    assert generations == sorted(generations) and generations[-1] >= unbounded[-1] - 2 > 10
    if sampler == "cmaes":
        last = [t.params for t in bounded.study.trials[-20:]]
        assert all(abs(p["x"] - 0.3) < 0.05 and abs(p["y"] - 0.7) < 0.05 for p in last)
