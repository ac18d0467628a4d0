"""Which device a trial really trained on, and how busy it kept it.

Ray gives a trial GPUs by setting CUDA_VISIBLE_DEVICES; whether torch can use them is another
matter (a CPU-only torch, a broken driver, or a cluster whose nodes only advertise GPUs, like
Ray's fake autoscaler nodes). So a trial says what it trained on (`device`: `cpu` or
`cuda:0 NVIDIA H200`) and how many GPUs Ray gave it (`gpus_given`), and reports per epoch the
GPU's utilisation and peak memory on CUDA, or the CPU cores it kept busy otherwise. torch is
imported by the caller: this module only takes its objects.
"""

from __future__ import annotations

import os
import time
from typing import Any


def gpus_given() -> int:
    """GPUs Ray assigned to this process (CUDA_VISIBLE_DEVICES as Ray sets it), 0 outside Ray."""
    import ray

    if ray.is_initialized():  # (ray.get_gpu_ids() would start a Ray of its own otherwise)
        return len(ray.get_gpu_ids())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return len([d for d in visible.split(",") if d.strip()])


def describe(device: Any) -> str:
    """`cpu`, or `cuda:0 <the GPU's name>`."""
    if device.type != "cuda":
        return device.type
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} {torch.cuda.get_device_name(index)}"


class DeviceMeter:
    """Per-epoch utilisation of the device a trial trains on (call `epoch_metrics` once an
    epoch): `gpu_utilization` (%, from NVML when available) and `gpu_memory_gb` (peak allocated)
    on CUDA; `cpu_utilization` (cores kept busy by this process: 1.0 = one core) otherwise."""

    def __init__(self, device: Any):
        self.device = device
        self.name = describe(device)
        self.given = gpus_given()
        self._mark()

    def _mark(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def epoch_metrics(self) -> dict[str, Any]:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        cpu = time.process_time() - self._cpu
        out: dict[str, Any] = {"device": self.name, "gpus_given": self.given}
        if self.device.type == "cuda":
            import torch

            out["gpu_memory_gb"] = torch.cuda.max_memory_allocated(self.device) / 1e9
            torch.cuda.reset_peak_memory_stats(self.device)
            try:  # needs NVML (nvidia-ml-py), which a CUDA torch usually brings
                out["gpu_utilization"] = float(torch.cuda.utilization(self.device))
            except Exception:
                pass
        else:
            out["cpu_utilization"] = cpu / wall
        self._mark()
        return out
