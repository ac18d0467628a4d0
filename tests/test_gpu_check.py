"""benchmarks/gpu_check.py without a GPU: the CPU path exits 0, and the rules that judge a
search's records (devices, the meter, accelerator hours, trials at once) pass good records and
fail each kind of bad one."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gpu_check as g  # noqa: E402

GOOD_RUN = {
    "status": "completed",
    "device": "cuda:0 NVIDIA H100",
    "gpu_utilization": 63.0,
    "gpu_memory_gb": 0.21,
    "val_accuracy": 0.91,
    "val_loss": 0.3,
}
GOOD_PARENT = {"accelerator_hours_used": 0.004, "accelerator_hours_reserved": 0.005}
GOOD_SPANS = [(0.0, 30.0), (2.0, 31.0)]


def judged(runs=None, parent=None, spans=None, trials=2) -> dict[str, g.Check]:
    runs = [dict(GOOD_RUN), dict(GOOD_RUN)] if runs is None else runs
    checks = g.judge_search(
        "bf16", runs, GOOD_PARENT if parent is None else parent,
        GOOD_SPANS if spans is None else spans, trials,
    )  # fmt: skip
    return {c.name.split(": ", 1)[1]: c for c in checks}


def test_without_cuda_it_says_so_and_exits_0(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert g.main([]) == 0
    out = capsys.readouterr().out
    assert "needs a GPU" in out and "PASS" not in out and "FAIL" not in out


def test_good_records_pass_every_check():
    checks = judged()
    assert set(checks) == {
        "trials trained", "nasorch.device", "meter", "accelerator_hours_used",
        "2 trials at gpu 0.5 at once",
    }  # fmt: skip
    assert all(c.ok for c in checks.values()), [c.line() for c in checks.values()]
    assert g.exit_status(list(checks.values())) == 0
    assert checks["2 trials at gpu 0.5 at once"].detail.endswith("together for 28.0 s")


@pytest.mark.parametrize(
    "change, failing",
    [
        ({"device": "cpu"}, "nasorch.device"),
        ({"gpu_utilization": None}, "meter"),
        ({"gpu_memory_gb": 0.0}, "meter"),
        ({"val_loss": math.nan}, "trials trained"),
        ({"val_accuracy": 0.08}, "trials trained"),  # not better than chance
        ({"status": "errored"}, "trials trained"),
    ],
)
def test_one_bad_trial_run_fails_its_check_only(change, failing):
    checks = judged(runs=[dict(GOOD_RUN), {**GOOD_RUN, **change}])
    assert [name for name, c in checks.items() if not c.ok] == [failing]
    assert checks[failing].line().startswith(f"FAIL  bf16: {failing}: ")
    assert g.exit_status(list(checks.values())) == 1


def test_missing_hours_trials_or_overlap_fail():
    assert not judged(parent={})["accelerator_hours_used"].ok
    assert not judged(parent={"accelerator_hours_used": 0.0})["accelerator_hours_used"].ok
    one_after_other = [(0.0, 10.0), (10.5, 20.0)]
    assert not judged(spans=one_after_other)["2 trials at gpu 0.5 at once"].ok
    assert not judged(spans=[(0.0, 10.0)])["2 trials at gpu 0.5 at once"].ok
    assert not judged(runs=[dict(GOOD_RUN)])["trials trained"].ok  # one of two trials
    assert not judged(runs=[])["nasorch.device"].ok


def test_overlap_seconds():
    assert g.overlap_seconds([(0, 10), (4, 12), (5, 9)]) == 4
    assert g.overlap_seconds([(0, 3), (5, 9)]) == 0
    assert g.overlap_seconds([]) == 0


def test_a_crashing_check_is_one_fail_line_and_no_checks_is_a_failure():
    def boom():
        raise RuntimeError("CUDA error: out of memory\nmore detail")

    checks = g.guarded("fp16: search", boom)
    assert [c.line() for c in checks] == [
        "FAIL  fp16: search: RuntimeError: CUDA error: out of memory"
    ]
    assert g.exit_status(checks) == 1
    assert g.exit_status([]) == 1
    assert g.guarded("x", lambda: [g.Check("x", True, "fine")])[0].line() == "PASS  x: fine"


def test_trial_spans_from_result_json(tmp_path):
    for name, rows in {
        "t001_aaaa": [(100.0, 4.0), (103.0, 3.0)],
        "t002_bbbb": [(101.0, 2.0)],
    }.items():
        (tmp_path / name).mkdir()
        lines = [json.dumps({"timestamp": t, "time_this_iter_s": s}) for t, s in rows]
        (tmp_path / name / "result.json").write_text("\n".join(lines) + "\n")
    assert g.trial_spans(str(tmp_path)) == [(96.0, 103.0), (99.0, 101.0)]
