"""benchmarks/differentiable.py's accounting: compute is measured seconds, and the verdict
follows from them (not from epochs, which count a supernet epoch as a standalone one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import differentiable as d  # noqa: E402


def method(name: str, seconds: float, best: float, free: int = 1) -> dict:
    return {"method": name, "seconds": seconds, "best": best, "free": free, "free_each": [free]}


def row(name: str, trials: list[tuple[float, float]]) -> dict:
    return {"method": name, "trials": trials}


def test_the_verdict_follows_from_seconds():
    rows = [row("guided", [(30.0, 0.97), (30.0, 0.99)])]
    cheap = d.verdict([method("darts_pt", 20.0, 0.985), method("guided", 60.0, 0.99)], rows)
    assert "ratio 0.33" in cheap and cheap.endswith("target met on the means")
    # The same accuracies at 0.67x guided's seconds miss the target of 0.5x.
    dear = d.verdict([method("darts_pt", 40.0, 0.985), method("guided", 60.0, 0.99)], rows)
    assert "ratio 0.67" in dear and "TARGET MISSED" in dear
    assert "within darts_pt's 40.0 device-seconds: best 0.9900" in dear


def test_best_within_counts_trials_started_before_the_budget():
    r = row("guided", [(10.0, 0.5), (10.0, 0.9), (10.0, 0.95)])
    assert d.best_within(r, 10.0) == 0.5
    assert d.best_within(r, 10.5) == 0.9


def test_trial_seconds_sums_epoch_seconds_and_refuses_a_trial_without_them(tmp_path):
    def trial(name: str, rows: list[dict]) -> None:
        (tmp_path / name).mkdir()
        text = "".join(json.dumps({"training_iteration": i + 1, **r}) + "\n" for i, r in
                       enumerate(rows))  # fmt: skip
        (tmp_path / name / "result.json").write_text(text)

    trial("t001_aaaa0001", [{"epoch_seconds": 0.5}, {"epoch_seconds": 0.25}])
    trial("t002_aaaa0002", [{"epoch_seconds": 1.0}])
    assert d.trial_seconds(str(tmp_path)) == {"aaaa0001": 0.75, "aaaa0002": 1.0}
    trial("t003_aaaa0003", [{"val_accuracy": 0.9}])
    with pytest.raises(RuntimeError, match="aaaa0003 reported no epoch_seconds"):
        d.trial_seconds(str(tmp_path))
