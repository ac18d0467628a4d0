"""PB2 with the same lineage records as PBT; its own module because importing Ray's PB2 loads
scikit-learn's Gaussian processes, which only a PB2 search needs."""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers.pb2 import PB2

from orchestrator import compat
from orchestrator.schedulers.population import Lineage
from orchestrator.schedulers.stopping import TIME_ATTR


class PB2Lineage(Lineage, compat.pbt_with_hooks(PB2)):
    def __init__(self, bounds: dict[str, tuple[float, float]], max_t: int, **kwargs: Any):
        super().__init__(
            time_attr=TIME_ATTR, hyperparam_bounds={k: list(v) for k, v in bounds.items()}, **kwargs
        )
        self._setup_lineage(bounds, max_t)
