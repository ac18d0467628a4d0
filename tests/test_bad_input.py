"""Broken input of every kind ends in one line naming the problem and exit status 2, never a
traceback, and leaves what is already recorded untouched."""

from __future__ import annotations

import socket

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.commands.cli import main
from tests.conftest import ROOT

GOOD = {
    "name": "bad-input",
    "metric": "score",
    "num_samples": 2,
    "search_space": {"name": "custom", "options": {"params": {"a": ["x", "y"]}}},
    "trainable": {"name": "tests.helpers:noop"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def space(params):
    return {**GOOD, "search_space": {"name": "custom", "options": {"params": params}}}


TABLE = ROOT / "examples" / "nb201_tabular.yaml"

CASES = {
    "empty choice": (space({"a": []}), "search_space.options.params.a"),
    "low above high": (space({"a": {"type": "float", "low": 2, "high": 1}}), "params.a"),
    "unknown param type": (space({"a": {"type": "normal"}}), "params.a.type"),
    "repeat min above max": (
        space({"r": {"type": "repeat", "min": 3, "max": 1, "block": {"w": [1, 2]}}}),
        "params.r",
    ),
    "log range from zero": (
        space({"a": {"type": "float", "low": 0, "high": 1, "log": True}}),
        "params.a",
    ),
    "unknown key in a param": (
        space({"a": {"type": "int", "low": 1, "high": 3, "step": 2}}),
        "params.a",
    ),
    "zero budget": ({**GOOD, "num_samples": 0}, "num_samples"),
    "negative concurrency": ({**GOOD, "max_concurrent_trials": -3}, "max_concurrent_trials"),
    "wrong type": ({**GOOD, "seed": "lucky"}, "seed"),
    "latency limit on a table": (
        {
            **GOOD,
            "search_space": {"name": "nb201"},
            "trainable": {"name": "tabular"},
            "metric": "test_accuracy",
            "constraints": {"max_latency_ms": 1},
        },
        "constraints.max_latency_ms",
    ),  # fmt: skip
    "negative limit": ({**GOOD, "constraints": {"max_params": -1}}, "constraints.max_params"),
    "bad objective mode": (
        {**GOOD, "objectives": [{"metric": "x", "mode": "up"}]},
        "objectives.0.mode",
    ),
    "zero consecutive failures": (
        {**GOOD, "max_consecutive_failures": 0},
        "max_consecutive_failures",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config(case, tmp_path, capsys):
    config, expected = CASES[case]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasorch: error: ") and expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def write_csv(tmp_path, text: str) -> str:
    path = tmp_path / "table.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n", "test_accuracy"),
        ("name,test_accuracy\nx,1\n", "arch"),
        ("", "table"),
        ("arch,test_accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,high\n", "table"),
    ],
    ids=["missing metric column", "missing arch column", "empty file", "non-numeric metric"],
)
def test_bad_tables(text, expected, tmp_path, capsys):
    table = write_csv(tmp_path, text)
    assert main(["run", str(TABLE), "--set", f"trainable.options.table={table}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasorch: error: trainable.options") and expected in err, err
    assert "Traceback" not in err


def test_unreachable_tracking_server(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    uri = f"http://127.0.0.1:{free_port()}"
    path.write_text(yaml.safe_dump({**GOOD, "tracking": {"uri": uri}}))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"tracking.uri: MLflow server at {uri} is unreachable" in err


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", "nonsense"])
def test_unreachable_ray(address, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    address = address.format(port=free_port())
    assert main(["run", str(path), "--address", address]) == 2
    assert capsys.readouterr().err.startswith("nasorch: error: --address: ")
    # nothing was recorded for a search that could not start
    client = MlflowClient(f"sqlite:///{tmp_path}/nasorch_results/mlflow.db")
    experiment = client.get_experiment_by_name("bad-input")
    assert experiment is None or not client.search_runs([experiment.experiment_id])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["resume", "/no/such/search"], "experiment: '/no/such/search' is neither"),
        (["bench", "--budget", "0"], "--budget"),
        (["bench", "--searchers", "random,nope"], "nope"),
    ],
)
def test_bad_commands(argv, expected, capsys, workdir):
    (workdir / "nasorch_results" / "ray").mkdir(parents=True)  # searches are looked up there
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_command_whose_module_cannot_be_imported_says_what_to_install(
    capsys, monkeypatch, workdir
):
    """`nasorch simulate` without a package its module imports: one line naming the package and
    the extra (it was dropped from the parser, then failed with an AttributeError)."""
    import sys

    monkeypatch.setitem(sys.modules, "orchestrator.simulation.study", None)  # ImportError
    assert main(["simulate", "--source", "nb201"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "orchestrator.simulation.study" in err
    assert 'pip install -e ".[bench]"' in err
    # Another command's word is not the command: `resume simulate` looks for a search instead.
    assert main(["resume", "simulate"]) == 2
    assert "needs" not in capsys.readouterr().err
