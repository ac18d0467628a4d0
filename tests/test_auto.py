"""`orchestrator.search(data=..., budget=...)`: the config is picked from the data alone, and a
search on a folder of pictures returns a best model that classifies."""

from __future__ import annotations

import pytest

import orchestrator
from orchestrator.commands.auto import auto_config, detect
from orchestrator.core.errors import UserError
from orchestrator.execution.components import load_config
from tests import data_files as gen


def test_the_data_picks_the_reader_and_the_space(tmp_path):
    cases = {
        str(gen.write_image_folder(tmp_path)): ("image_folder", "conv"),
        str(gen.write_csv(tmp_path)): ("csv", "mlp"),
        str(gen.write_parquet(tmp_path)): ("parquet", "mlp"),
        str(gen.write_text(tmp_path)): ("text", "recurrent"),
        str(gen.write_npz(tmp_path)): ("npz", "conv"),
    }
    for data, (fmt, space) in cases.items():
        cfg = auto_config(data, budget="1h")
        assert cfg["trainable"]["options"]["dataset"]["format"] == fmt
        assert cfg["search_space"]["name"] == space
        load_config(cfg)  # a valid config, every component built
    assert detect("CIFAR10") == {"format": "torchvision", "name": "CIFAR10"}


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"data": "nowhere/"}, "data:"),
        ({"data": "{csv}", "target": "class"}, "target:"),
        ({"data": "{csv}", "task": "segment"}, "task:"),
    ],
)
def test_bad_input_is_one_line(tmp_path, kwargs, field):
    kwargs = {k: v.format(csv=gen.write_csv(tmp_path)) for k, v in kwargs.items()}
    with pytest.raises(UserError) as e:
        auto_config(**kwargs)
    assert str(e.value).startswith(field) and "\n" not in str(e.value)


def test_three_lines_give_a_best_model(ray_local, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)  # nasorch_results/ is made here
    pictures = gen.write_image_folder(tmp_path)
    result = orchestrator.search(
        data=str(pictures), budget="25s", epochs=2, progress=False,
        overrides=["trainable.options.dataset.image_size=8", "max_concurrent_trials=2"],
    )  # fmt: skip
    assert len(result.trials) >= 1 and result.best is not None
    model = result.best_model()
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 3)


def test_the_command_refuses_bad_data_in_one_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    cmd = [sys.executable, "-m", "orchestrator.commands.cli", "search", str(tmp_path / "none.csv")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("nasorch: error: data:")
    assert len(done.stderr.strip().splitlines()) == 1
