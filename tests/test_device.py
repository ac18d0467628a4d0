"""What a trial trained on: the device tag, the CPU warning for trials given GPUs, the
accelerator hours used next to those reserved, and the per-epoch utilisation."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from orchestrator.core import tags as T
from orchestrator.tracking.events import DeviceUse


def result(device: str, seconds: float, gpus: int = 1) -> dict:
    return {"device": device, "gpus_given": gpus, "time_total_s": seconds, "node_ip": "10.0.0.7"}


def test_a_trial_given_a_gpu_that_trains_on_the_cpu_is_warned_about_once():
    use = DeviceUse(gpu_per_trial=0.5)
    tags, warning = use.note("a", "t001", result("cpu", 10))
    assert tags == {T.DEVICE: "cpu"}
    assert warning.startswith("nasorch: warning: trial t001 was given 0.5 GPU but trained on the")
    assert "10.0.0.7" in warning
    assert use.note("a", "t001", result("cpu", 20)) == ({}, None)  # tagged once
    assert use.note("b", "t002", result("cpu", 5)) == ({T.DEVICE: "cpu"}, None)  # warned once


def test_no_warning_on_a_gpu_or_when_no_gpu_was_given():
    use = DeviceUse(gpu_per_trial=0.0)
    assert use.note("a", "t001", result("cpu", 3, gpus=0)) == ({T.DEVICE: "cpu"}, None)
    assert use.hours() == {}  # a CPU search reserves no accelerator time
    use = DeviceUse(gpu_per_trial=1.0)
    assert use.note("a", "t001", result("cuda:0 NVIDIA H200", 3)) == (
        {T.DEVICE: "cuda:0 NVIDIA H200"},
        None,
    )


def test_accelerator_hours_used_count_only_trials_on_cuda():
    use = DeviceUse(gpu_per_trial=0.5)
    use.note("a", "t001", result("cuda:0 NVIDIA H200", 3600))
    use.note("b", "t002", result("cpu", 1800))
    use.note("b", "t002", result("cpu", 3600))  # the latest running time counts
    hours = use.hours()
    assert hours["accelerator_hours_reserved"] == pytest.approx(1.0)  # 2 h x 0.5 GPU
    assert hours["accelerator_hours_used"] == pytest.approx(0.5)
    silent = DeviceUse(gpu_per_trial=1.0)  # a trainable that never says its device
    silent.note("a", "t001", {"time_total_s": 7200})
    assert silent.hours() == {"accelerator_hours_reserved": pytest.approx(2.0)}


def test_the_meter_on_the_cpu_reports_the_cores_kept_busy(monkeypatch):
    import ray

    from trainables.device import DeviceMeter, describe

    # Outside a Ray worker the GPUs given are those CUDA_VISIBLE_DEVICES names (a test process
    # may hold the suite's shared Ray, which would answer for its driver instead).
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    cpu = SimpleNamespace(type="cpu", index=None)  # what torch.device("cpu") says of itself
    assert describe(cpu) == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 3")
    assert DeviceMeter(cpu).epoch_metrics()["gpus_given"] == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    meter = DeviceMeter(cpu)
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:  # one core busy
        pass
    metrics = meter.epoch_metrics()
    assert metrics["device"] == "cpu" and metrics["gpus_given"] == 0
    assert 0.2 < metrics["cpu_utilization"] < 1.5  # one core, shared on a loaded machine
    time.sleep(0.3)  # idle: the next epoch's figure is its own
    assert meter.epoch_metrics()["cpu_utilization"] < 0.5
