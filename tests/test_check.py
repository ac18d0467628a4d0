"""`nasorch check`: validates and describes a config in seconds, without Ray or MLflow."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.commands.cli import main
from tests.conftest import ROOT

EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_checks(example, workdir, capsys):
    import ray

    was_up = ray.is_initialized()
    assert main(["check", str(ROOT / "examples" / example)]) == 0
    out = capsys.readouterr().out
    assert "resolved config:" in out and "search space" in out and "config OK" in out
    assert "a sampled architecture:" in out
    assert ray.is_initialized() == was_up  # no Ray started
    assert not (workdir / "nasorch_results").exists()  # no MLflow store, no results folder


def test_it_reports_size_costs_and_rejections(workdir, capsys):
    config = {
        "name": "chk",
        "metric": "test_accuracy",
        "search_space": {"name": "nb201"},
        "trainable": {"name": "tabular"},
        "constraints": {"max_params": 60_000},
    }
    (workdir / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["check", "c.yaml", "--samples", "100"]) == 0
    out = capsys.readouterr().out
    assert "search space 'nb201': 15,625 architectures" in out
    assert "its costs: num_params" in out
    assert "sampled candidates rejected by max_params: " in out and " of 100" in out


def test_a_bad_config_is_one_line(workdir, capsys):
    (workdir / "c.yaml").write_text(yaml.safe_dump({"name": "x", "search_space": {"name": "zz"}}))
    assert main(["check", "c.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasorch: error: search_space.name: 'zz' is not one of")
    assert err.count("\n") == 1
