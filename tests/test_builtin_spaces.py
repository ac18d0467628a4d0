"""The SearchSpace contract for the conv, recurrent and transformer spaces, plus their options."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import optuna
import pytest

from orchestrator.searchers.optuna import to_optuna
from search_spaces import SEARCH_SPACES, ConvSpace, RecurrentSpace, TransformerSpace

SPACES = [ConvSpace, RecurrentSpace, TransformerSpace]
ids = [s.name for s in SPACES]


@pytest.mark.parametrize("space_cls", SPACES, ids=ids)
def test_contract(space_cls):
    space = space_cls()
    assert SEARCH_SPACES[space.name] is space_cls
    rng = random.Random(0)
    widths = set()
    for _ in range(50):
        arch = space.sample(rng)
        assert space.validate(arch) is arch
        assert json.loads(json.dumps(arch)) == arch
        child = space.mutate(arch, rng)
        assert space.key(child) != space.key(arch)
        space.validate(child)
        widths.add(len(space.encode(arch)))
        flat = space.to_params(arch)
        assert all(isinstance(v, (int, float, str, bool)) for v in flat.values())
        params, _ = to_optuna(space, arch)
        assert params == flat  # built-in spaces have no fixed values, so nothing is dropped
        name = space.describe(arch)
        assert name and len(name) <= 80 and "\n" not in name
    assert len(widths) == 1


@pytest.mark.parametrize("space_cls", SPACES, ids=ids)
def test_optuna_suggest_gives_valid_archs(space_cls):
    space = space_cls()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    for i in range(10):
        trial = study.ask()
        arch = space.validate(space.suggest(trial))
        assert to_optuna(space, arch)[0] == trial.params
        study.tell(trial, float(i))


def test_describe_names():
    conv = ConvSpace().validate(
        {
            "stages": [
                {"channels": 8, "blocks": 1, "stride": 1, "pool": "none"},
                {"channels": 16, "blocks": 2, "stride": 2, "pool": "max"},
            ],
            "kernel": 3,
            "residual": True,
            "lr": 0.001,
            "batch_size": 64,
        }
    )
    assert ConvSpace().describe(conv) == "conv[8-16x2/s2+max] k3 res lr1.0e-03 bs64"
    rec = {"cell": "lstm", "layers": 2, "hidden": 128, "bidirectional": True, "dropout": 0.1}
    rec |= {"lr": 0.01, "batch_size": 32}
    assert RecurrentSpace().describe(rec).startswith("lstm 2x128 bi ")
    tfm = {"layers": 2, "heads": 4, "head_dim": 16, "ff": 128, "dropout": 0.0}
    tfm |= {"lr": 0.01, "batch_size": 32}
    assert TransformerSpace().describe(tfm).startswith("tfm L2 h4 d64 ff128 ")


def test_transformer_width_is_always_divisible_by_heads():
    space = TransformerSpace(heads=[1, 2, 3, 4], head_dims=[4, 6])
    rng = random.Random(1)
    for _ in range(50):
        arch = space.sample(rng)
        assert (arch["heads"] * arch["head_dim"]) % arch["heads"] == 0


BAD_OPTIONS = [
    (ConvSpace, {"kernels": [3, 4]}, "kernels: 4 is not one of"),
    (ConvSpace, {"strides": [3]}, "strides: 3 is not one of"),
    (ConvSpace, {"pools": ["min"]}, "pools: 'min' is not one of"),
    (ConvSpace, {"residual": [1]}, "residual: 1 is not one of"),
    (ConvSpace, {"max_stages": 0}, "max_stages must be an integer from 1 to 6"),
    (ConvSpace, {"channels": []}, "channels: needs a non-empty list"),
    (ConvSpace, {"channels": [8, -1]}, "channels: -1 is not a positive integer"),
    (ConvSpace, {"channels": [8, 8]}, "channels: values must be distinct"),
    (ConvSpace, {"kernels": [3, 3]}, "kernels: values must be distinct"),
    (ConvSpace, {"lr": [0.1, 0.01]}, "lr must satisfy"),
    (RecurrentSpace, {"cells": ["transformer"]}, "cells: 'transformer' is not one of"),
    (RecurrentSpace, {"cells": "lstm"}, "cells: needs a non-empty list"),
    (RecurrentSpace, {"max_layers": 2.5}, "max_layers must be an integer"),
    (RecurrentSpace, {"dropout": [0.0, 1.5]}, "dropout must satisfy"),
    (RecurrentSpace, {"hidden_sizes": [0]}, "hidden_sizes: 0 is not a positive integer"),
    (TransformerSpace, {"heads": [2, "4"]}, "heads: '4' is not a positive integer"),
    (TransformerSpace, {"batch_sizes": []}, "batch_sizes: needs a non-empty list"),
    (TransformerSpace, {"lr": 0.01}, r"lr must be a pair \[low, high\]"),
]


@pytest.mark.parametrize(("space_cls", "options", "message"), BAD_OPTIONS)
def test_bad_options_are_refused_with_the_option_named(space_cls, options, message):
    with pytest.raises(ValueError, match=message):
        space_cls(**options)


def test_options_narrow_the_space():
    space = ConvSpace(max_stages=1, channels=[8], kernels=[5], residual=[True], pools=["avg"])
    arch = space.sample(random.Random(0))
    assert len(arch["stages"]) == 1 and arch["kernel"] == 5 and arch["residual"] is True
    assert (
        RecurrentSpace(cells=["gru"], bidirectional=[False]).sample(random.Random(0))["cell"]
        == "gru"
    )


def test_spaces_do_not_import_torch():
    # Searchers and encoders import spaces in processes that never train.
    code = "import sys, search_spaces; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
