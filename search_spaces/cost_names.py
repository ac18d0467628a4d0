"""The names of a model's costs and of the limits on them, without importing torch (the gate
and the config check them on the driver; `cost.py` measures them)."""

LIMIT_KEYS = {
    "max_params": ("num_params", "parameters"),
    "max_flops": ("flops", "FLOPs"),
    "max_latency_ms": ("latency_ms", "ms latency"),
    "max_size_mb": ("size_mb", "MB"),
}
