"""The names of a model's costs and of the limits on them, and the one check of costs against
limits, without importing torch (the gate and `nasorch check` run it on the driver; `cost.py`
measures the costs)."""

from __future__ import annotations

from collections.abc import Mapping

LIMIT_KEYS = {
    "max_params": ("num_params", "parameters"),
    "max_flops": ("flops", "FLOPs"),
    "max_latency_ms": ("latency_ms", "ms latency"),
    "max_size_mb": ("size_mb", "MB"),
}


def limit_violations(
    cost: Mapping[str, float], limits: Mapping[str, float | None]
) -> dict[str, str]:
    """Limit name -> why `cost` (metric name -> value, e.g. `Cost.as_metrics()`) violates it,
    as `constraints.max_params: num_params 1,500,000 parameters exceeds the limit 1,000,000`.
    A None limit is ignored; an empty dict means every limit holds. An unknown limit, or one
    whose metric `cost` lacks, is a ValueError naming the field."""
    out = {}
    for key, limit in limits.items():
        if key not in LIMIT_KEYS:
            raise ValueError(f"constraints.{key}: unknown limit; allowed: {', '.join(LIMIT_KEYS)}")
        if limit is None:
            continue
        metric, unit = LIMIT_KEYS[key]
        if metric not in cost:
            raise ValueError(f"constraints.{key}: this search space cannot tell {metric}")
        if cost[metric] > limit:
            out[key] = (
                f"constraints.{key}: {metric} {_fmt(cost[metric])} {unit} exceeds the limit "
                f"{_fmt(limit)}"
            )
    return out


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"
