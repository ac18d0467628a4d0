"""One contract for every search space that builds with default options, plus a custom one."""

import json
import random

import pytest

from orchestrator.searchers import to_optuna
from search_spaces import SEARCH_SPACES
from search_spaces.language import Choice, Fixed, Float, Int, Repeat, Space


def custom() -> Space:
    return Space(
        {
            "layers": Repeat(0, 3, {"op": Choice(["conv", "pool"]), "k": Int(1, 7)}),
            "lr": Float(1e-5, 1.0, log=True),
            "units": Int(8, 1024, log=True),
            "act": Choice(["relu", "gelu"]),
            "fixed": Fixed("x"),
        }
    )


def _default_spaces() -> dict:
    spaces = {"custom-python": custom}
    for name, factory in sorted(SEARCH_SPACES.items()):
        try:
            factory()
        except TypeError:  # needs options (e.g. "custom" needs params): covered above
            continue
        spaces[name] = factory
    return spaces


SPACES = _default_spaces()


@pytest.fixture(params=sorted(SPACES))
def space(request):
    return SPACES[request.param]()


def _samples(space, n=30, seed=0):
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(n)]


def test_sample_is_valid_and_json(space):
    for arch in _samples(space):
        assert space.validate(arch) is not None
        assert json.loads(json.dumps(arch)) == arch


def test_sampling_is_seeded(space):
    keys = [space.key(a) for a in _samples(space, seed=7)]
    assert keys == [space.key(a) for a in _samples(space, seed=7)]
    assert len(set(keys)) > 1


def test_mutate_differs_and_stays_valid(space):
    rng = random.Random(1)
    for arch in _samples(space):
        child = space.mutate(arch, rng)
        space.validate(child)
        assert space.key(child) != space.key(arch)


def test_encode_has_fixed_length(space):
    lengths = {len(space.encode(a)) for a in _samples(space)}
    assert len(lengths) == 1 and lengths.pop() > 0
    assert all(isinstance(v, float) for v in space.encode(_samples(space, 1)[0]))


def test_key_is_stable(space):
    for arch in _samples(space):
        copy = json.loads(json.dumps(arch))
        assert space.key(copy) == space.key(arch)
        assert isinstance(space.key(arch), str)


def test_to_params_is_flat_scalars(space):
    for arch in _samples(space):
        params = space.to_params(arch)
        assert params and all(isinstance(k, str) for k in params)
        assert all(v is None or isinstance(v, (str, int, float, bool)) for v in params.values())
        assert isinstance(space.describe(arch), str)


def test_suggest_replay_reproduces_the_arch(space):
    for arch in _samples(space):
        params, dists = to_optuna(space, arch)  # raises if suggest() does not give arch back
        assert set(params) == set(dists)


def test_neighbours_are_distinct_and_valid(space):
    rng = random.Random(2)
    for arch in _samples(space, 10):
        nbrs = space.neighbours(arch, rng, limit=16)
        keys = [space.key(n) for n in nbrs]
        assert nbrs and len(keys) == len(set(keys)) and space.key(arch) not in keys
        for n in nbrs:
            space.validate(n)
