"""The YAML search-space language: what compiles, what is refused (and where), and replay."""

from __future__ import annotations

import random

import optuna
import pytest
import yaml

from orchestrator.searchers.optuna import to_optuna
from search_spaces.base import SearchSpaceError
from search_spaces.language import Choice, Fixed, Float, Int, Repeat, Space, parse_params

VALID = """
layers:
  type: repeat
  min: 1
  max: 3
  block:
    width: [16, 32, 64]
    act: {type: choice, values: [relu, gelu]}
    scale: {type: float, low: 0.5, high: 2.0}
lr: {type: float, low: 1e-4, high: 1e-1, log: true}
units: {type: int, low: 2, high: 64, log: true}
steps: {type: int, low: 1.0, high: 5}
optimizer: adam
momentum: {type: fixed, value: 0.9}
"""


def space() -> Space:
    return Space(parse_params(yaml.safe_load(VALID)))


def test_valid_definition_compiles_to_the_right_params():
    params = parse_params(yaml.safe_load(VALID))
    assert isinstance(params["layers"], Repeat)
    assert isinstance(params["layers"].block["width"], Choice)
    assert isinstance(params["lr"], Float) and params["lr"].log
    assert params["lr"].low == pytest.approx(1e-4)  # YAML 1.1 reads "1e-4" as a string
    assert isinstance(params["units"], Int) and params["units"].log
    assert isinstance(params["steps"], Int) and params["steps"].low == 1
    assert isinstance(params["optimizer"], Fixed) and params["optimizer"].value == "adam"
    assert isinstance(params["momentum"], Fixed)


def test_nested_repeat_compiles():
    spec = {
        "outer": {
            "type": "repeat",
            "min": 1,
            "max": 2,
            "block": {"inner": {"type": "repeat", "min": 0, "max": 2, "block": {"w": [1, 2]}}},
        }
    }
    s = Space(parse_params(spec))
    rng = random.Random(0)
    for _ in range(20):
        s.validate(s.sample(rng))


def _block(**extra):
    return {"type": "repeat", "min": 1, "max": 2, "block": {"width": [8, 16]}, **extra}


INVALID = [
    ({"x": {"type": "choice", "values": []}}, "params.x.values"),
    ({"x": []}, "params.x.values"),
    ({"x": {"type": "choice", "values": [1, 1]}}, "params.x.values"),
    ({"x": {"type": "choice", "values": [[1, 2], 3]}}, "params.x.values"),
    ({"x": {"type": "int", "low": 5, "high": 1}}, "params.x.low"),
    ({"x": {"type": "float", "low": 1.0, "high": 0.5}}, "params.x.low"),
    ({"x": {"type": "float", "high": 0.5}}, "params.x.low"),
    ({"x": {"type": "float", "low": "abc", "high": 0.5}}, "params.x.low"),
    ({"x": {"type": "float", "low": 0.0, "high": float("nan")}}, "params.x.high"),
    ({"x": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "params.x.low"),
    ({"x": {"type": "float", "low": -1, "high": 1.0, "log": True}}, "params.x.low"),
    ({"x": {"type": "float", "low": 1, "high": 2, "log": "yes"}}, "params.x.log"),
    ({"x": {"type": "int", "low": 1.5, "high": 4}}, "params.x.low"),
    ({"x": {"type": "int", "low": 1, "high": 4.5}}, "params.x.high"),
    ({"x": {"type": "normal", "low": 1}}, "params.x.type"),
    ({"x": {"type": ["int"]}}, "params.x.type"),
    ({"x": {"low": 1, "high": 2}}, "params.x.type"),
    ({"x": {"type": "int", "low": 1, "high": 2, "step": 1}}, "params.x.step"),
    ({"x": {"type": "fixed"}}, "params.x.value"),
    ({"x": _block(min=3, max=1)}, "params.x.min"),
    ({"x": _block(min=-1)}, "params.x.min"),
    ({"x": _block(max=2.5)}, "params.x.max"),
    ({"x": _block(block={})}, "params.x.block"),
    ({"x": _block(block=[1, 2])}, "params.x.block"),
    ({"x": _block(width=4)}, "params.x.width"),
    (
        {"layers": _block(block={"width": {"type": "int", "low": 9, "high": 3}})},
        "params.layers.block.width.low",
    ),
    ({"layers": _block(block={"width": {"type": "cube"}})}, "params.layers.block.width.type"),
    ([1, 2], "params"),
    ({}, "params"),
    ("width: 3", "params"),
]


@pytest.mark.parametrize(("spec", "where"), INVALID, ids=[w for _, w in INVALID])
def test_invalid_definition_names_the_offending_path(spec, where):
    with pytest.raises(SearchSpaceError) as err:
        parse_params(spec)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{where}: "), msg


def test_repeat_block_params_exist_exactly_for_the_sampled_depth():
    s = space()
    rng = random.Random(1)
    depths = set()
    for _ in range(50):
        arch = s.sample(rng)
        depth = len(arch["layers"])
        depths.add(depth)
        flat = s.to_params(arch)
        assert flat["layers"] == depth
        block_keys = {k for k in flat if k.startswith("layers.")}
        expected = {f"layers.{i}.{k}" for i in range(depth) for k in ("width", "act", "scale")}
        assert block_keys == expected
    assert depths == {1, 2, 3}


def test_to_params_keys_match_the_optuna_replay():
    s = space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed = {k for k, p in s.params.items() if isinstance(p, Fixed)}
    for _ in range(20):
        trial = study.ask()
        arch = s.suggest(trial)
        s.validate(arch)
        flat = s.to_params(arch)
        assert {k: v for k, v in flat.items() if k not in fixed} == trial.params
        params, dists = to_optuna(s, arch)
        assert params == trial.params and set(dists) == set(params)
        study.tell(trial, 0.0)


def test_validate_names_the_offending_path():
    s = space()
    arch = s.sample(random.Random(2))
    arch["layers"][0]["width"] = 7
    with pytest.raises(SearchSpaceError, match=r"^layers\[0\]\.width: 7 is not one of"):
        s.validate(arch)


def test_a_repeat_with_nothing_to_change_is_not_tunable():
    assert not Repeat(2, 2, {"w": Fixed(1)}).tunable
    assert Repeat(1, 2, {"w": Fixed(1)}).tunable
    assert Repeat(2, 2, {"w": Choice([1, 2])}).tunable


def test_log_float_samples_at_the_bounds_stay_inside_them():
    p = Float(1e-3, 1e-2, log=True)
    for u in (0.0, 1.0, 1.5, -0.5):
        p.check(p._from_unit(u), "lr")


def test_describe_rounds_floats_for_run_names():
    space = Space(
        {
            "lr": Float(1e-6, 1e-1, log=True),
            "layers": Repeat(1, 2, {"w": Choice([16, 32])}),
            "act": Choice(["relu", "tanh"]),
            "momentum": Fixed(0.9),
            "scale": Float(0, 1e6),
        }
    )
    arch = {
        "lr": 0.02195773446539457,
        "layers": [{"w": 16}],
        "act": "relu",
        "momentum": 0.9,
        "scale": 123456.789,
    }
    assert (
        space.describe(arch)
        == "lr=0.022,layers=1,layers.0.w=16,act=relu,momentum=0.9,scale=1.23e+05"
    )
    assert space.describe({**arch, "lr": 1.2345678e-05}).startswith("lr=1.23e-05,")
    # every sampled name is short: no float spills its 17 digits
    rng = random.Random(0)
    for _ in range(50):
        for part in space.describe(space.sample(rng)).split(","):
            assert len(part.split("=", 1)[1]) <= 8, part
