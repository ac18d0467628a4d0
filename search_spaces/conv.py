"""A convolutional macro space for small images: stages of blocks, then global pooling.

Each stage has its own width, depth, stride and pooling; kernel size and residual connections are
network-wide. The builder never shrinks a feature map below 1x1 (a stride or pooling that would
is a no-op there), so every sample is valid on inputs as small as 8x8.
"""

from __future__ import annotations

from typing import Any

from search_spaces.base import Arch
from search_spaces.language import Choice, Float, Int, Repeat, Space
from search_spaces.options import check_int, check_positive_ints, check_range, check_subset

POOLS = ("none", "max", "avg")
KERNELS = (1, 3, 5, 7)
STRIDES = (1, 2)


class ConvSpace(Space):
    """1 to `max_stages` stages, each `channels` wide with 1 to `max_blocks` conv blocks."""

    name = "conv"
    input_layout = "image"

    def __init__(
        self,
        max_stages: int = 3,
        max_blocks: int = 2,
        channels: list[int] = (8, 16, 32),
        kernels: list[int] = (3, 5),
        strides: list[int] = (1, 2),
        pools: list[str] = ("none", "max"),
        residual: list[bool] = (False, True),
        lr: tuple[float, float] = (3e-4, 3e-2),
        batch_sizes: list[int] = (32, 64, 128),
    ):
        max_stages = check_int("max_stages", max_stages, 1, 6)
        max_blocks = check_int("max_blocks", max_blocks, 1, 4)
        channels = check_positive_ints("channels", channels)
        check_subset("kernels", kernels, KERNELS)
        check_subset("strides", strides, STRIDES)
        check_subset("pools", pools, POOLS)
        check_subset("residual", residual, (False, True))
        check_positive_ints("batch_sizes", batch_sizes)
        super().__init__(
            {
                "stages": Repeat(
                    1,
                    max_stages,
                    {
                        "channels": Choice(channels),
                        "blocks": Int(1, max_blocks),
                        "stride": Choice(list(strides)),
                        "pool": Choice(list(pools)),
                    },
                ),
                "kernel": Choice(list(kernels)),
                "residual": Choice(list(residual)),
                "lr": Float(*check_range("lr", lr, 1e-7, 10.0), log=True),
                "batch_size": Choice(list(batch_sizes)),
            }
        )

    def describe(self, arch: Arch) -> str:
        stages = "-".join(_describe_stage(s) for s in arch["stages"])
        res = " res" if arch["residual"] else ""
        return f"conv[{stages}] k{arch['kernel']}{res} lr{arch['lr']:.1e} bs{arch['batch_size']}"

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        from search_spaces.torch_models.conv import build_conv

        return build_conv(arch, input_shape, num_classes)


def _describe_stage(stage: dict[str, Any]) -> str:
    # "32x2/s2+max": 32 channels, 2 blocks, stride 2, then max pooling; defaults are left out.
    out = str(stage["channels"])
    if stage["blocks"] > 1:
        out += f"x{stage['blocks']}"
    if stage["stride"] > 1:
        out += f"/s{stage['stride']}"
    if stage["pool"] != "none":
        out += f"+{stage['pool']}"
    return out
