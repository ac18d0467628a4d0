"""The cost model: exact FLOPs where they are known, positive latency, readable constraints."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from search_spaces import cost
from search_spaces.cost import Cost, measure
from search_spaces.cost_names import limit_violations


def test_flops_of_a_linear_model_are_the_analytic_value():
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    c = measure(model, (64,), latency_repeats=3)
    assert c.flops == 2 * (64 * 32 + 32 * 10)
    assert c.num_params == 64 * 32 + 32 + 32 * 10 + 10
    assert c.size_mb == pytest.approx(c.num_params * 4 / 2**20)
    assert c.latency_ms > 0


def test_flops_of_a_conv_count_every_output_position():
    model = nn.Conv2d(1, 4, 3, padding=1)
    assert measure(model, (1, 8, 8), latency_repeats=1).flops == 2 * 4 * 8 * 8 * 9


def test_flops_of_1d_3d_and_transposed_convs():
    assert measure(nn.Conv1d(2, 4, 3), (2, 10), latency_repeats=1).flops == 2 * 4 * 8 * 2 * 3
    conv3d = nn.Conv3d(1, 2, 3, padding=1)
    assert measure(conv3d, (1, 4, 4, 4), latency_repeats=1).flops == 2 * 2 * 64 * 27
    # Each input element is spread over out_channels x kernel outputs.
    up = nn.ConvTranspose2d(4, 2, 3)
    assert measure(up, (4, 8, 8), latency_repeats=1).flops == 2 * 4 * 64 * 2 * 9


def test_lstm_and_attention_flops_are_counted_on_cpu():
    lstm = nn.LSTM(8, 16, batch_first=True)
    # 8 steps, each multiplying the input (8) and hidden (16) state into 4 gates of 16.
    assert measure(lstm, (8, 8), latency_repeats=1).flops == 2 * 8 * 4 * 16 * (8 + 16)
    attn = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    expected = 2 * 8 * (16 * 48 + 16 * 16 + 16 * 32 + 32 * 16) + 2 * 2 * 8 * 8 * 16
    assert measure(attn, (8, 16), latency_repeats=1).flops == expected


def test_flops_do_not_depend_on_the_callers_grad_mode():
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    with torch.no_grad():
        inside = measure(layer, (8, 16), latency_repeats=1).flops
    assert inside == measure(layer, (8, 16), latency_repeats=1).flops


def test_analytic_fallback_when_counting_fails(monkeypatch):
    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("no flop counter here")

    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 10))
    counted = measure(model, (1, 8, 8), latency_repeats=1).flops
    monkeypatch.setattr(cost, "FlopCounterMode", Broken)
    assert measure(model, (1, 8, 8), latency_repeats=1).flops == counted


def test_buffers_count_towards_size_and_mode_is_restored():
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
    c = measure(model, (8,), latency_repeats=2)
    assert c.size_mb * 2**20 == pytest.approx((8 * 8 + 8 + 2 * 8 + 2 * 8) * 4 + 8)
    assert model.training


def test_as_metrics_has_the_four_names():
    c = Cost(num_params=10, flops=20, latency_ms=0.5, size_mb=0.1)
    assert c.as_metrics() == {"num_params": 10, "flops": 20, "latency_ms": 0.5, "size_mb": 0.1}


def test_limit_violations_name_the_limit_and_the_value():
    c = Cost(num_params=1_500_000, flops=3_000, latency_ms=2.5, size_mb=5.7).as_metrics()
    assert limit_violations(c, {}) == {}
    assert limit_violations(c, {"max_params": 2_000_000, "max_latency_ms": 3}) == {}
    out = limit_violations(c, {"max_params": 1_000_000, "max_flops": None, "max_size_mb": 4})
    assert out == {
        "max_params": "constraints.max_params: num_params 1,500,000 parameters exceeds the limit "
        "1,000,000",
        "max_size_mb": "constraints.max_size_mb: size_mb 5.7 MB exceeds the limit 4",
    }
    assert set(limit_violations(c, {"max_flops": 100, "max_latency_ms": 1.0})) == {
        "max_flops",
        "max_latency_ms",
    }


def test_limit_violations_refuse_unknown_limits_and_missing_costs():
    with pytest.raises(ValueError, match="constraints.max_param: .*allowed: max_params, max_flops"):
        limit_violations(Cost(1, 1, 1.0, 1.0).as_metrics(), {"max_param": 5})
    with pytest.raises(ValueError, match="constraints.max_flops: this search space cannot tell"):
        limit_violations({"num_params": 3}, {"max_flops": 5})


def test_bad_repeat_counts_are_refused():
    with pytest.raises(ValueError, match="latency_repeats"):
        measure(nn.Linear(2, 2), (2,), latency_repeats=0)


def test_measure_is_cheap():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    measure(model, (64,))  # the first call pays torch's one-time import of its dispatch machinery
    start = time.perf_counter()
    measure(model, (64,))
    assert time.perf_counter() - start < 0.3
