"""The gate every suggestion passes before it may take a trial slot.

It costs the architecture (parameters, FLOPs, CPU latency, size), rejects it if a hard
constraint is violated, and answers at once for an architecture this search has already
evaluated (same canonical hash) instead of training it again, or that an earlier search
evaluated with the same fingerprint (`record`, filled by a warm start). Rejections and reuses
are counted for the parent run. Costing runs on the driver: a rejected candidate never reaches
a worker.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from search_spaces.cost_names import LIMIT_KEYS, limit_violations

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    run: bool  # False: do not train; tell the strategy `value` now
    value: Any = None
    cost: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # duplicate, duplicate in flight, reused, or the violated constraints
    source: dict[str, Any] | None = None  # reused: the earlier trial (run_id, epochs, metrics)


class Gate:
    def __init__(
        self,
        space: Any,
        *,
        limits: dict[str, float] | None = None,
        dedupe: bool = True,
        input_shape: tuple[int, ...] | None = None,
        num_classes: int | None = None,
        build: Any = None,
    ):
        self.space = space
        # A user's network builder (trainable.options.model) is costed, not the space's own.
        self.build = build or getattr(space, "build_model", None)
        self.limits = {k: v for k, v in (limits or {}).items() if v is not None}
        self.dedupe = dedupe
        self.input_shape = input_shape  # set when the trainable builds torch models
        self.num_classes = num_classes
        self.results: dict[str, Any] = {}  # arch key -> value told to the strategy
        self.inflight: set[str] = set()
        self.waiting: dict[str, list[dict]] = {}  # duplicates of an in-flight arch
        self.rejected: Counter[str] = Counter()
        self.rejections: list[dict[str, Any]] = []
        self.reused = 0
        # arch key -> an earlier search's trial that answers for it: value, run_id, epochs,
        # metrics (orchestrator/warm_start); used once, then it is one of `results`.
        self.record: dict[str, dict[str, Any]] = {}
        self.from_record = 0
        self.warm_told = 0  # earlier results the strategy was told before its first ask
        self._costs: dict[str, dict[str, float]] = {}

    def cost(self, arch: dict) -> dict[str, float]:
        key = self.space.key(arch)
        if key not in self._costs:
            self._costs[key] = self._measure(arch)
        return self._costs[key]

    def warm_up(self, arch: dict) -> None:
        """Cost one candidate now (the first costing imports torch's FLOP counter: seconds),
        so that it happens while the driver waits on something else."""
        self.cost(arch)

    def _measure(self, arch: dict) -> dict[str, float]:
        if self.input_shape is None:
            return dict(self.space.objectives(arch))
        import torch

        from search_spaces.cost import measure

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as a trial runs it (trainable option threads=1)
        try:
            model = self.build(arch, self.input_shape, self.num_classes)
            return {k: float(v) for k, v in measure(model, self.input_shape).as_metrics().items()}
        finally:
            torch.set_num_threads(threads)

    def check(self, arch: dict) -> Verdict:
        key = self.space.key(arch)
        if self.dedupe and key in self.results:
            self.reused += 1
            return Verdict(False, self.results[key], reason="duplicate")
        if self.dedupe and key in self.inflight:
            self.reused += 1
            self.waiting.setdefault(key, []).append(arch)
            return Verdict(False, reason="duplicate in flight")
        cost = self.cost(arch) if (self.limits or self.input_shape is not None) else {}
        violations = self.violations(cost)
        if violations:
            self.rejected.update(violations.keys())
            reason = "; ".join(violations.values())
            self.rejections.append({"arch": self.space.describe(arch), "reason": reason})
            self.results[key] = None
            return Verdict(False, None, cost, reason)
        if self.dedupe and key in self.record:
            source = self.record.pop(key)
            self.from_record += 1
            self.results[key] = source["value"]
            return Verdict(False, source["value"], cost, "reused", source)
        self.inflight.add(key)
        return Verdict(True, cost=cost)

    @property
    def exhausted(self) -> bool:
        """Every architecture of a finite space is evaluated or in flight: asking for more
        would only find duplicates (a benchmark table's few hundred candidates, say)."""
        size = self.space.size()
        return (
            self.dedupe and size != float("inf") and len(self.results) + len(self.inflight) >= size
        )

    # What a built torch model is costed on (search_spaces.cost.measure), without importing it.
    MODEL_COSTS = ("num_params", "flops", "latency_ms", "size_mb")

    def cost_names(self, arch: dict) -> set[str]:
        """The cost metrics this gate can tell for an architecture of its space, found without
        measuring anything (a table's analytic costs are cheap to ask)."""
        if self.input_shape is not None:
            return set(self.MODEL_COSTS)
        return set(self.space.objectives(arch))

    @staticmethod
    def cost_metric(limit: str) -> str:
        return LIMIT_KEYS[limit][0]

    def violations(self, cost: dict[str, float]) -> dict[str, str]:
        """Limit name -> why it is violated (search_spaces.cost_names.limit_violations)."""
        return limit_violations(cost, self.limits)

    def done(self, arch: dict, value: Any) -> list[dict]:
        """Record a finished trial's value; returns the waiting duplicates to tell as well."""
        key = self.space.key(arch)
        self.inflight.discard(key)
        self.results[key] = value
        return self.waiting.pop(key, [])

    def summary(self) -> dict[str, float]:
        out = {"candidates_rejected": float(sum(self.rejected.values()))}
        out.update({f"rejected_{k}": float(v) for k, v in self.rejected.items()})
        out["duplicates_reused"] = float(self.reused)
        if self.warm_told or self.from_record:
            out["warm_start_results"] = float(self.warm_told)
            out["trials_reused"] = float(self.from_record)
        return out

    # ---- state (for resume) ----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "rejected": dict(self.rejected),
            "rejections": self.rejections,
            "reused": self.reused,
            "record": self.record,
            "from_record": self.from_record,
            "warm_told": self.warm_told,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.results = dict(state.get("results", {}))
        self.rejected = Counter(state.get("rejected", {}))
        self.rejections = list(state.get("rejections", []))
        self.reused = int(state.get("reused", 0))
        self.record = dict(state.get("record", {}))
        self.from_record = int(state.get("from_record", 0))
        self.warm_told = int(state.get("warm_told", 0))
