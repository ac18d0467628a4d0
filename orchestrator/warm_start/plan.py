"""What a search takes from earlier trials, decided once before its first trial (pure Python).

- Trials with the same fingerprint are the search's own past: every one is told to the searcher
  before it proposes anything (a trial stopped early as a partial result: `observe` at the epoch
  it reached, then `tell`, as a live search tells it), and the ones that ran their full budget
  are answers: a proposal of one of them is answered from the record instead of trained. A
  stopped one proposed again is trained (its checkpoint may be gone; a resumed epoch count would
  differ from a fresh trial's).
- Trials that share only the recipe (another dataset), or every other trial when the user says
  the tasks are related, are a prior: the `top_k` best distinct architectures of them are
  suggested (in the order `seed_turn` gives), and their results on this task are told as any
  result is. They are never told as answers: a related task's numbers are not this task's.
  Given the search's `budget`, they take at most a quarter of it, so that a "related" task that
  turns out unrelated costs at most that share. docs/benchmarks/warm-start.md measures it:
  on NAS-Bench-201 across datasets, the best 25 of a 200-trial record reach within 25 trials
  what a cold start reaches in 100 on 4 of 6 pairs (misses of 0.10 and 0.013 points), and a
  shuffled source still ends level with a cold start at 100, within noise.
- Their results are not told to the searcher as this task's results: an unrelated task's values
  misled a predictor-guided search (91.29 against a cold 91.54 at 100 on a shuffled table), and
  `guided` never proposes an architecture it was told about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.searchers.base import Strategy
from orchestrator.warm_start.fingerprint import Fingerprint

SEED_SHARE = 0.25  # the most of a search's budget that a related task's best may take
# When a related task's best are suggested: the first SEED_HEAD at once (on NAS-Bench-201 the
# target's optimum is among the source's best two in most searches), then one every SEED_EVERY
# suggestions with the searcher's own in between. All 25 first cost regret on LCBench, whose
# tasks share the recipe but not the optimum (0.063 against 0.042 cold at the late budget, 12
# ordered pairs) though they met NB201's 25-against-100 target on 5 of 6 dataset pairs; every
# other one cost none there but met 3 of 6; this order costs 0.044 there and meets 4 of 6.
SEED_HEAD, SEED_EVERY = 5, 2


def seed_turn(i: int) -> bool:
    """Whether suggestion `i` (0-based) takes the next seed rather than the searcher's."""
    return i < SEED_HEAD or (i - SEED_HEAD) % SEED_EVERY == 0


@dataclass
class PastTrial:
    arch: dict[str, Any]
    key: str
    value: float | list[float]  # what the searcher is told (several objectives: a list)
    epochs: int
    complete: bool  # ran its whole budget (else stopped early: a partial result)
    fingerprint: str
    recipe: str
    run_id: str = ""
    experiment_id: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # the run's last values
    checkpoint: str = ""  # its last checkpoint (tags.CHECKPOINT): a reused best model's source


@dataclass
class WarmStart:
    told: list[PastTrial]  # the search's own past, in the order it happened
    answers: dict[str, PastTrial]  # arch key -> a complete trial that answers a proposal
    seeds: list[dict[str, Any]]  # a related task's best architectures, tried first

    @classmethod
    def plan(
        cls,
        past: list[PastTrial],
        here: Fingerprint,
        *,
        mode: str,
        reuse: bool = True,
        transfer: str = "auto",
        top_k: int = 25,
        budget: int | None = None,
    ) -> WarmStart:
        """`transfer`: "auto" (a prior from trials of the same recipe on other data), "all"
        (every other trial: the user says the tasks are related) or "off". `budget`: the
        search's number of trials, if known; the related task's best then take at most
        `SEED_SHARE` of it (at least one)."""
        own = [p for p in past if p.fingerprint == here.full] if reuse else []
        answers: dict[str, PastTrial] = {}
        for p in own:  # the first complete evaluation of an architecture answers for it
            if p.complete:
                answers.setdefault(p.key, p)
        others = [p for p in past if p.fingerprint != here.full]
        if transfer == "auto":
            others = [p for p in others if p.recipe == here.recipe]
        elif transfer == "off":
            others = []
        if budget is not None:
            top_k = min(top_k, max(1, int(budget * SEED_SHARE)))
        return cls(own, answers, _best_distinct(others, mode, top_k, exclude={p.key for p in own}))

    def gate_record(self) -> dict[str, dict[str, Any]]:
        """The answers as the gate keeps them (`Gate.record`: JSON, in the searcher's state)."""
        return {
            key: {
                "value": p.value,
                "run_id": p.run_id,
                "experiment_id": p.experiment_id,
                "epochs": p.epochs,
                "metrics": p.metrics,
                "checkpoint": p.checkpoint,
            }
            for key, p in self.answers.items()
        }

    def apply(self, searcher: Any) -> None:
        """Prime a `StrategySearcher` (its strategy, its gate, its seeds) before its first
        suggestion: the one wiring for a real search, the bench and the simulator."""
        searcher.gate.warm_told = self.prime(searcher.strategy)
        searcher.gate.record = self.gate_record()
        searcher.seeds, searcher.seed_turn = list(self.seeds), seed_turn

    def prime(self, strategy: Strategy) -> int:
        """Tell `strategy` the search's own past; returns how many results it was told."""
        for p in self.told:
            if not p.complete:
                strategy.observe(p.arch, p.epochs, _first(p.value))
            strategy.tell(p.arch, p.value)
        return len(self.told)


def _best_distinct(
    trials: list[PastTrial], mode: str, k: int, exclude: set[str]
) -> list[dict[str, Any]]:
    sign = 1.0 if mode == "max" else -1.0
    ranked = sorted(trials, key=lambda p: (-sign * _first(p.value), not p.complete))
    seeds: dict[str, dict[str, Any]] = {}
    for p in ranked:
        if len(seeds) >= k:
            break
        if p.key not in exclude:
            seeds.setdefault(p.key, p.arch)
    return list(seeds.values())


def _first(value: float | list[float]) -> float:
    return float(value[0]) if isinstance(value, list) else float(value)
