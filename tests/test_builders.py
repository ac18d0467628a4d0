"""Torch builders of the built-in spaces: random samples build, run, learn and can be measured."""

from __future__ import annotations

import random

import pytest
import torch

from search_spaces import ConvSpace, MLPSpace, RecurrentSpace, TransformerSpace, cost

SHAPES = {"flat": (64,), "image": (1, 8, 8), "sequence": (8, 8)}
SPACES = [MLPSpace, ConvSpace, RecurrentSpace, TransformerSpace]
ids = [s.name for s in SPACES]


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run beside other work on small machines; one thread keeps timings predictable.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("space_cls", SPACES, ids=ids)
def test_random_samples_build_and_map_a_batch_to_logits(space_cls):
    space = space_cls()
    shape = SHAPES[space.input_layout]
    rng = random.Random(0)
    x = torch.randn(5, *shape)
    for _ in range(20):
        arch = space.sample(rng)
        model = space.build_model(arch, shape, 10)
        assert model(x).shape == (5, 10), space.describe(arch)
        model.eval()
        with torch.no_grad():
            assert torch.isfinite(model(x)).all(), space.describe(arch)


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(model(x), y)


@pytest.mark.parametrize("space_cls", SPACES, ids=ids)
def test_a_few_training_steps_reduce_the_loss(space_cls):
    space = space_cls()
    shape = SHAPES[space.input_layout]
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, *shape, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    rng = random.Random(1)
    for _ in range(3):
        arch = space.sample(rng)
        torch.manual_seed(0)
        model = space.build_model(arch, shape, 10)
        # A fixed, moderate learning rate: the arch's own may be tiny and need many steps.
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.eval()
        with torch.no_grad():
            before = _loss(model, x, y).item()
        model.train()
        for _ in range(15):
            opt.zero_grad()
            _loss(model, x, y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            after = _loss(model, x, y).item()
        assert after < before, f"{space.describe(arch)}: {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("space_cls", SPACES, ids=ids)
def test_cost_measure_is_positive_and_counts_every_parameter(space_cls):
    space = space_cls()
    shape = SHAPES[space.input_layout]
    rng = random.Random(2)
    for _ in range(3):
        arch = space.sample(rng)
        model = space.build_model(arch, shape, 10)
        model.train()
        c = cost.measure(model, shape, latency_repeats=5, warmup=1)
        assert c.num_params == sum(p.numel() for p in model.parameters())
        assert c.flops > 0 and c.latency_ms > 0 and c.size_mb > 0
        assert c.flops == cost.analytic_flops(model, torch.randn(1, *shape))
        assert model.training  # measure restores the mode it found
