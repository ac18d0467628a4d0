"""Bad configs fail with one line naming the field and what is allowed, exit code 2."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.commands.cli import main
from orchestrator.core.errors import UserError
from orchestrator.execution.components import load_config

BASE = {"name": "t", "search_space": {"name": "mlp"}}


def with_(**changes):
    cfg = {**BASE}
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (with_(mode="maxx"), "mode: Input should be 'max' or 'min'"),
        (with_(colour=1), "colour: unknown key (allowed: name, metric, mode"),
        (with_(num_samples=0), "num_samples: Input should be greater than or equal to 1"),
        (with_(num_samples="ten"), "num_samples: Input should be a valid integer"),
        (with_(max_concurrent_trials=-1), "max_concurrent_trials: Input should be greater"),
        (with_(name="has space"), "name: String should match pattern"),
        ({"search_space": {"name": "mlp"}}, "name: required"),
        (with_(searcher={"name": "bogus"}), "searcher.name: 'bogus' is not one of"),
        (with_(scheduler={"name": "nope"}), "scheduler.name: 'nope' is not one of asha, "),
        (with_(search_space={"name": "zz"}), "search_space.name: 'zz' is not one of"),
        (
            with_(searcher={"name": "tpe", "options": {"x": 1}}),
            "searcher.options: unknown option 'x' for tpe",
        ),
        (
            with_(searcher={"name": "tpe", "color": 1}),
            "searcher.color: unknown key (allowed: name, options)",
        ),
        (
            with_(trainable={"name": "torch", "options": {"epochs": 0}}),
            "trainable.options.epochs: Input should be greater",
        ),
        (
            with_(trainable={"name": "torch", "options": {"epoch": 3}}),
            "trainable.options.epoch: unknown key (allowed: dataset, epochs",
        ),
        (
            with_(trainable={"name": "torch", "options": {"dataset": "mnist"}}),
            "trainable.options.dataset: 'mnist' is not one of digits, wine, breast_cancer",
        ),
        (with_(trainable={"name": "no_such"}), "trainable.name: 'no_such' is not one of"),
        (
            with_(trainable={"name": "no_such_module_xyz:f"}),
            "trainable.name: cannot import module 'no_such_module_xyz'",
        ),
        (
            with_(trainable={"name": "os:nothing"}),
            "trainable.name: module 'os' has no function 'nothing'",
        ),
        (with_(resources={"gpu": -1}), "resources.gpu: Input should be greater than or equal to 0"),
        (with_(resources={"cpu": 0}), "resources.cpu: Input should be greater than 0"),
        (with_(resources={"tpu": 1}), "resources.tpu: unknown key (allowed: cpu, gpu)"),
        (
            with_(search_space={"name": "mlp", "options": {"max_depth": 30}}),
            "search_space.options: mlp: max_depth must be between 1 and 16",
        ),
        (
            with_(searcher={"name": "fidelity", "options": {"acquisition": "ucb"}}),
            "searcher.options: fidelity: acquisition must be one of alternate, ei, its, got 'ucb'",
        ),
        (
            with_(scheduler={"name": "asha", "options": {"grace_period": 50}}),
            "scheduler.options: asha: grace_period must be between 1 and max epochs (10)",
        ),
        (
            with_(scheduler={"name": "asha", "options": {"reduction_factor": 1}}),
            "reduction_factor must be > 1",
        ),
        (
            with_(tracking={"url": "x"}),
            "tracking.url: unknown key (allowed: uri, experiment, register_model)",
        ),
        (with_(max_failures=-2), "max_failures: Input should be greater than or equal to 0"),
    ],
)
def test_bad_config_names_the_field(config, expected):
    with pytest.raises(UserError) as err:
        load_config(config)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_overrides_apply_dotted_keys():
    cfg = load_config(BASE, ["num_samples=7", "searcher.name=tpe", "trainable.options.epochs=4"])
    assert cfg.num_samples == 7
    assert cfg.searcher.name == "tpe"
    assert cfg.trainable.options["epochs"] == 4


@pytest.mark.parametrize("item", ["num_samples", "=3", "name.x=1"])
def test_bad_overrides(item):
    with pytest.raises(UserError, match="--set"):
        load_config(BASE, [item])


def test_tracking_uri_honours_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/elsewhere.db")
    assert load_config(BASE).tracking_uri() == "sqlite:////tmp/elsewhere.db"
    explicit = with_(tracking={"uri": "http://127.0.0.1:5999"})
    assert load_config(explicit).tracking_uri() == "http://127.0.0.1:5999"


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(with_(searcher={"name": "bogus"})))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasorch: error: searcher.name: 'bogus' is not one of")
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "invalid YAML at line 1"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_cli_bad_yaml(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    assert expected in capsys.readouterr().err


def test_cli_missing_file(capsys):
    assert main(["run", "/no/such/config.yaml"]) == 2
    assert "config file not found: /no/such/config.yaml" in capsys.readouterr().err


def test_examples_are_valid():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].glob("examples/*.yaml")):
        load_config(path)
