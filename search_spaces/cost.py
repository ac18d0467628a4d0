"""A cost model for any built torch module: parameters, FLOPs, CPU latency and size.

FLOPs follow torch's FlopCounterMode convention (a multiply-add is 2 FLOPs, only matrix
products, convolutions and attention are counted) on one batch-1 forward pass. Two kernels that
the counter does not know on CPU are taught to it: the oneDNN LSTM layer and CPU flash attention.
If counting fails anyway, an analytic count over Linear, Conv, RNN and attention modules is used.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Cost:
    num_params: int
    flops: int
    latency_ms: float
    size_mb: float

    def as_metrics(self) -> dict[str, float]:
        return asdict(self)


def measure(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    latency_repeats: int = 20,
    warmup: int = 3,
) -> Cost:
    """Measure `model` on a batch of one input of `input_shape` (without the batch dimension).

    Latency is the median of `latency_repeats` CPU forward passes in eval mode after `warmup`
    passes, at torch's current thread count; a model on another device is measured on a CPU
    copy. The model's mode is restored. A few ms for small models, but the first call in a
    process also pays torch's one-time import of its dispatch machinery (about a second).
    """
    if latency_repeats < 1 or warmup < 0:
        raise ValueError("latency_repeats must be >= 1 and warmup >= 0")
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device.type != "cpu" for t in tensors):
        model = copy.deepcopy(model).cpu()
    was_training = model.training
    model.eval()
    try:
        dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
        x = torch.randn(1, *input_shape, dtype=dtype)
        flops = count_flops(model, x)
        with torch.no_grad():
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(latency_repeats):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return Cost(
        num_params=sum(p.numel() for p in model.parameters()),
        flops=flops,
        latency_ms=statistics.median(times) * 1e3,
        size_mb=sum(t.numel() * t.element_size() for t in tensors) / 2**20,
    )


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of `model(x)`: counted by torch, analytic only if counting raises."""
    try:
        # With grad enabled, torch's fused inference kernels (which hide the matmuls) stay off,
        # even when the caller measures inside torch.no_grad().
        with (
            torch.enable_grad(),
            FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS) as counter,
        ):
            model(x)
        return int(counter.get_total_flops())
    except Exception:  # an op the counter cannot handle: fall back to the module-level formula
        return analytic_flops(model, x)


def _rnn_layer_flops(x, w_ih, w_hh, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # Every step multiplies both weight matrices by one input row per sequence.
    return 2 * math.prod(x[:-1]) * (math.prod(w_ih) + math.prod(w_hh))


def _attention_flops(q, k, v, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # scores = q @ k^T, then scores @ v, for every (batch, head).
    return 2 * math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


_EXTRA_FORMULAS = {
    getattr(torch.ops.aten, name): formula
    for name, formula in [
        ("mkldnn_rnn_layer", _rnn_layer_flops),
        ("_scaled_dot_product_flash_attention_for_cpu", _attention_flops),
    ]
    if hasattr(torch.ops.aten, name)
}


# torch's public convolution classes (the lazy ones subclass them); their common base is private.
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def analytic_flops(model: nn.Module, x: torch.Tensor) -> int:
    """2 x multiply-adds of every Linear, Conv, RNN and attention module, via forward hooks."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        nonlocal total
        inp = inputs[0]
        out = output[0] if isinstance(output, tuple) else output
        if isinstance(module, nn.Linear):
            total += 2 * math.prod(out.shape[:-1]) * module.in_features * module.out_features
        elif isinstance(module, _CONVS):
            per_output = module.weight[0].numel()  # in_channels / groups * kernel volume
            total += 2 * out.numel() * per_output
        elif isinstance(module, _TRANSPOSED_CONVS):
            per_input = module.weight[0].numel()  # out_channels / groups * kernel volume
            total += 2 * inp.numel() * per_input
        elif isinstance(module, nn.RNNBase):
            weights = [w for n, w in module.named_parameters() if n.startswith("weight")]
            total += 2 * math.prod(inp.shape[:-1]) * sum(w.numel() for w in weights)
        elif isinstance(module, nn.MultiheadAttention):
            # Its q/k/v and output projections bypass Linear.forward, so no hook sees them.
            tokens, width = math.prod(inp.shape[:-1]), module.embed_dim
            seq = inp.shape[1] if module.batch_first else inp.shape[0]
            total += 2 * tokens * width * 4 * width + 4 * tokens * seq * width

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total
