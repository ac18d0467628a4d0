import json
import random

import pytest
import torch

from orchestrator.searchers import to_optuna
from search_spaces import SEARCH_SPACES, SearchSpaceError
from search_spaces.nb201 import EDGE_NAMES, OPS, NB201Space, arch_to_string, parse_arch

BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


def test_registered():
    assert isinstance(SEARCH_SPACES["nb201"](), NB201Space)


def test_string_round_trip():
    arch = parse_arch(BEST)
    assert arch["edges"] == ["nor_conv_3x3"] * 3 + ["skip_connect", "nor_conv_3x3", "nor_conv_1x1"]
    assert arch_to_string(arch) == BEST
    space = NB201Space()
    assert space.key(arch) == space.describe(arch) == space.to_string(arch) == BEST
    rng = random.Random(0)
    for _ in range(50):
        a = space.sample(rng)
        assert parse_arch(arch_to_string(a)) == a
        assert json.loads(json.dumps(a)) == a


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "3 node groups"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "'op~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "start and end"),
    ],
)
def test_parse_errors(text, fragment):
    with pytest.raises(SearchSpaceError, match=fragment):
        parse_arch(text)


def test_validate():
    space = NB201Space()
    assert space.validate(parse_arch(BEST))
    with pytest.raises(SearchSpaceError, match="edge_3_2"):
        space.validate({"edges": ["none"] * 5 + ["conv"]})
    with pytest.raises(SearchSpaceError, match="6 ops"):
        space.validate({"edges": ["none"] * 5})
    with pytest.raises(SearchSpaceError):
        space.validate({"cell": BEST})


def test_mutate_changes_exactly_one_edge():
    space, rng = NB201Space(), random.Random(1)
    for _ in range(100):
        a = space.sample(rng)
        b = space.mutate(a, rng)
        assert sum(x != y for x, y in zip(a["edges"], b["edges"], strict=True)) == 1


def test_neighbours_exact():
    space = NB201Space()
    arch = parse_arch(BEST)
    nbrs = space.neighbours(arch, random.Random(0))
    assert len(nbrs) == 24 == len({space.key(n) for n in nbrs})
    assert space.key(arch) not in {space.key(n) for n in nbrs}
    assert all(
        sum(x != y for x, y in zip(arch["edges"], n["edges"], strict=True)) == 1 for n in nbrs
    )
    assert len(space.neighbours(arch, random.Random(0), limit=5)) == 5


def test_encode_one_hot():
    space = NB201Space()
    vec = space.encode(parse_arch(BEST))
    assert len(vec) == 30 and sum(vec) == 6
    assert vec[OPS.index("nor_conv_3x3")] == 1.0


def test_to_params_and_optuna_replay():
    space = NB201Space()
    arch = parse_arch(BEST)
    params = space.to_params(arch)
    assert list(params) == list(EDGE_NAMES)
    optuna_params, dists = to_optuna(space, arch)
    assert optuna_params == params and set(dists) == set(EDGE_NAMES)


@pytest.mark.parametrize(
    "options, shape",
    [
        ({}, (1, 8, 8)),
        ({"C": 4, "N": 2, "input_shape": [3, 32, 32]}, (3, 32, 32)),
        ({"C": 5, "input_shape": [1, 7, 7], "num_classes": 3}, (1, 7, 7)),
    ],
)
def test_torch_model_matches_analytic_costs(options, shape):
    from torch.utils.flop_counter import FlopCounterMode

    space = NB201Space(**options)
    rng = random.Random(2)
    for arch in [parse_arch(BEST), space.sample(rng), {"edges": ["none"] * 6}]:
        model = space.build_model(arch, shape, space.num_classes).eval()
        with FlopCounterMode(display=False) as counter:
            out = model(torch.randn(2, *shape))
        assert out.shape == (2, space.num_classes)
        costs = space.objectives(arch)
        assert costs["num_params"] == sum(p.numel() for p in model.parameters())
        assert costs["flops"] == counter.get_total_flops() // 2 // 2  # MACs of one image


def test_default_model_trains_a_step_on_digits_sized_input():
    space = NB201Space()
    assert space.input_layout == "image"
    model = space.build_model(parse_arch(BEST), (1, 8, 8), 10)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_bad_options():
    with pytest.raises(ValueError):
        NB201Space(C=0)
    with pytest.raises(SearchSpaceError):
        NB201Space(input_shape=(8,))
