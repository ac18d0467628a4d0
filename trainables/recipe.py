"""The training recipe of the torch trainable: optimizer, learning-rate schedule, augmentation,
mixed precision. Pure functions of (options, epoch), so a resumed or exploited trial continues
with exactly the learning rate it would have had.

The schedule is defined over the trial's whole epoch budget (`epochs`), not over the epochs a
scheduler lets it run: at ASHA's first rung a trial has the learning rate a full trial has at
that epoch, so the rungs compare like with like.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any


def lr_factor(epoch: int, epochs: int, schedule: str, warmup: int, step: int, gamma: float):
    """Multiplier of the base learning rate during `epoch` (1-based)."""
    if warmup and epoch <= warmup:
        return epoch / (warmup + 1)
    if schedule == "cosine":  # to zero at the end of the budget, after the warm-up
        span = max(1, epochs - warmup)
        return 0.5 * (1 + math.cos(math.pi * (epoch - 1 - warmup) / span))
    if schedule == "step":
        return gamma ** ((epoch - 1) // step)
    return 1.0


def optimizer_for(model: Any, name: str, lr: float, wd: float, momentum: float, nesterov: bool):
    import torch

    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=wd,
            nesterov=nesterov and momentum > 0,
        )  # fmt: skip
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=lr, weight_decay=wd)


def augment(x: Any, generator: Any, pad: int = 4) -> Any:
    """The standard CIFAR augmentation on a batch (N, C, H, W): a random crop of the image
    padded by `pad` (zeros), and a horizontal flip of half the images."""
    import torch

    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def autocast(device: Any, amp: str) -> Any:
    """Mixed precision on CUDA (`amp: bf16 | fp16`); full precision elsewhere."""
    import torch

    if amp == "off" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def grad_scaler(device: Any, amp: str) -> Any:
    """fp16 needs loss scaling; bf16 and full precision do not (a disabled scaler)."""
    import torch

    return torch.amp.GradScaler("cuda", enabled=amp == "fp16" and device.type == "cuda")
