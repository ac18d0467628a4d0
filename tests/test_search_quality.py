"""Seeded search-quality regression on the NAS-Bench-201 CIFAR-10 table.

Every searcher runs 10 seeds x 100 evaluations with its default options through the very driver
`nasorch bench` uses (`commands.bench.run_one`: one simulated worker, one-epoch table curves),
and must beat random search on the mean best test accuracy found. Beating random alone would
let a searcher that stopped learning pass about half the time (its mean is random's, give
or take a standard error of ~0.1 points over 10 seeds), so each must also clear a margin: 0.2
points for REA, TPE, local and guided (they lead random by ~0.5); REINFORCE leads by only ~0.2
at 100 evaluations, so it and random get 50 seeds (cheap: no model) and a margin of 0.1.
About 10 s on 2 cores, TPE and guided taking most of it. The table is
nb201_cifar10.csv in $NASORCH_DATA, else ../shared/data beside the repo.
"""

from __future__ import annotations

from statistics import mean

import pytest

from orchestrator.commands.bench import run_one
from trainables.tabular import default_table_path

SEEDS = 10
BUDGET = 100
# searcher -> (seeds, margin over random's mean on those seeds, in accuracy points)
MARGINS = {
    "rea": (SEEDS, 0.2),
    "reinforce": (50, 0.1),
    "tpe": (SEEDS, 0.2),
    "local": (SEEDS, 0.2),
    "guided": (SEEDS, 0.2),
}


@pytest.fixture(scope="module")
def best_found() -> dict[str, list[float]]:
    """Searcher -> the best test accuracy found in BUDGET evaluations, one per seed 0, 1, ..."""
    job = {
        "table": default_table_path(),
        "arch_column": "arch",
        "metric_column": "test_accuracy",
        "mode": "max",
        "space": "nb201",
        "space_options": {},
        "budget": BUDGET,
        "objective2": None,
    }
    seeds = {name: n for name, (n, _) in MARGINS.items()}
    seeds["random"] = max(seeds.values())
    found = {}
    for name, n in seeds.items():
        runs = [run_one(job, name, seed) for seed in range(n)]
        assert all(len(r["curve"]) == BUDGET for r in runs)
        found[name] = [r["curve"][-1] for r in runs]
    return found


def _means(found: dict[str, list[float]], seeds: int) -> dict[str, float]:
    return {name: round(mean(v[:seeds]), 4) for name, v in found.items() if len(v) >= seeds}


@pytest.mark.parametrize("name", MARGINS)
def test_searcher_beats_random(best_found, name):
    means = _means(best_found, SEEDS)
    assert means[name] > means["random"], f"{SEEDS} seeds: {means}"
    seeds, margin = MARGINS[name]
    means = _means(best_found, seeds)
    assert means[name] > means["random"] + margin, f"{seeds} seeds, margin {margin}: {means}"


def test_guided_is_at_least_as_good_as_tpe(best_found):
    means = _means(best_found, SEEDS)
    assert means["guided"] >= means["tpe"], f"{SEEDS} seeds: {means}"


def test_the_gp_fits_on_one_blas_thread_and_gives_the_threads_back():
    from threadpoolctl import threadpool_info

    from orchestrator.searchers._common import one_blas_thread

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    import numpy as np

    np.ones((2, 2)) @ np.ones((2, 2))  # numpy's BLAS loaded: the list below is not empty
    before = blas_threads()
    assert before, "no BLAS library found: the limit below would check nothing"
    with one_blas_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


def test_guided_keeps_the_same_gp_points_incrementally_as_from_the_whole_history():
    import heapq
    import json
    import random

    from orchestrator.searchers.guided import GuidedSearch
    from search_spaces import NB201Space

    space, rng = NB201Space(), random.Random(0)
    guided = GuidedSearch(space, seed=0, max_points=20)
    for i in range(300):  # scores with many ties, and failures
        guided.tell(space.sample(rng), None if i % 17 == 0 else float(rng.randint(0, 30)))
        done = [(a, s) for a, s in guided.results if s is not None]
        if len(done) > 20:  # the selection `propose` made from the whole history
            ranked = heapq.nlargest(10, range(len(done)), key=lambda i: done[i][1])
            keep = sorted(set(ranked) | set(range(len(done) - 10, len(done))))
            done = [done[i] for i in keep]
        assert guided._fit_points() == done
    restored = GuidedSearch(space, seed=0, max_points=20)
    restored.load_state(json.loads(json.dumps(guided.state())))
    assert restored._fit_points() == guided._fit_points()


@pytest.mark.parametrize("name", ["guided", "rungs"])
def test_past_batch_after_one_fit_serves_several_asks_and_the_queue_resumes(name):
    """Past `batch_after` results one GP fit serves 1 + results // batch_after asks (distinct,
    never asked before), a fit goes stale after as many new results, and a searcher restored
    between two asks of one batch asks exactly what the original does."""
    import json
    import random

    from orchestrator.searchers import STRATEGIES
    from search_spaces import NB201Space

    space, rng = NB201Space(), random.Random(0)
    searcher = STRATEGIES[name](space, seed=0, batch_after=20)
    guide = searcher.guide if name == "rungs" else searcher
    fits, propose = [], guide.propose
    guide.propose = lambda *a: fits.append(1) or propose(*a)
    for _ in range(60):  # 60 results: a fit serves min(32, 1 + 60 // 20) = 4 asks
        searcher.tell(space.sample(rng), float(rng.random()))
    asked = [searcher.ask() for _ in range(4)]
    assert len(fits) == 1 and guide.fit_tag[2] == 4
    assert len({space.key(a) for a in asked}) == 4
    searcher.ask()  # the batch is spent: a new fit
    assert len(fits) == 2 and len(guide.queue) == 3
    restored = STRATEGIES[name](space, seed=0, batch_after=20)
    restored.load_state(json.loads(json.dumps(searcher.state())))
    assert [space.key(restored.ask()) for _ in range(5)] == [
        space.key(searcher.ask()) for _ in range(5)
    ]
    for _ in range(4):  # as many new results as the fit served: it is stale
        searcher.tell(space.sample(rng), float(rng.random()))
    searcher.ask()
    assert len(fits) == 4


def test_tpe_is_optunas_below_batch_after_and_batches_past_it():
    """`tpe` asks exactly what Optuna's own TPESampler asks while the search is shorter than
    `batch_after`; past it one fit of the Parzen estimators serves several asks."""
    import random

    import optuna

    from orchestrator.searchers import STRATEGIES
    from orchestrator.searchers.batched_tpe import BatchedTPESampler
    from search_spaces import NB201Space

    space = NB201Space()
    ours = STRATEGIES["tpe"](space, seed=3)
    plain = STRATEGIES["tpe"](space, seed=3)
    plain._new_study(optuna.samplers.TPESampler(seed=3))  # Optuna's, unbatched
    rng = random.Random(0)
    for _ in range(40):
        a, b = ours.ask(), plain.ask()
        assert space.key(a) == space.key(b)
        value = rng.random()
        ours.tell(a, value)
        plain.tell(b, value)
    sampler = ours.study.sampler
    assert isinstance(sampler, BatchedTPESampler)
    sampler.batch_after = 10  # 40 told: 1 + 40 // 10 = 5 proposals a fit
    ours.ask()
    assert len(sampler.queue) == 4
    for _ in range(4):
        ours.ask()
    assert sampler.queue == []


def test_fidelity_serves_a_pool_past_batch_after_and_resumes_mid_batch():
    import json
    import random

    from orchestrator.searchers import STRATEGIES
    from search_spaces import NB201Space

    space, rng = NB201Space(), random.Random(0)
    searcher = STRATEGIES["fidelity"](space, seed=0, batch_after=None)  # no pools yet
    for _ in range(30):
        arch = searcher.ask()
        for epoch in (1, 2, 3):
            searcher.observe(arch, epoch, rng.random() * epoch)
        searcher.tell(arch, rng.random())
    searcher.guide.batch_after = 10  # the pool queue is guided's
    first = searcher.ask()  # n_asked 31: a pool serves 1 + 31 // 10 = 4 asks
    assert len(searcher.guide.queue) == 3 and searcher.guide.fit_tag[2] == 4
    restored = STRATEGIES["fidelity"](space, seed=0, batch_after=10)
    restored.load_state(json.loads(json.dumps(searcher.state())))
    assert [space.key(restored.ask()) for _ in range(5)] == [
        space.key(searcher.ask()) for _ in range(5)
    ]
    assert space.key(first) not in {space.key(a) for a in searcher.guide.queue}
