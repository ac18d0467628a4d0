"""A REINFORCE controller (Zoph & Le, ICLR 2017, without the RNN): one categorical policy per
decision, a moving-average baseline and an entropy bonus.

The decisions are whatever the space's define-by-run `suggest` asks for, so it works for any
space: a choice is a categorical over its values, an int or float range a categorical over
`bins` equal slices (uniform inside the slice). A result is credited back to the decisions by
replaying the arch through `to_optuna`, so a told arch need not have been asked for.
"""

from __future__ import annotations

import math
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from orchestrator.searchers.base import Strategy
from orchestrator.searchers.optuna import ReplayTrial, to_optuna
from search_spaces.base import Arch, SearchSpace


class Reinforce(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        lr: float = 0.2,
        baseline_decay: float = 0.9,
        entropy_weight: float = 0.01,
        bins: int = 8,
    ):
        super().__init__(space, mode=mode, seed=seed)
        self.lr, self.decay, self.entropy_weight, self.bins = (
            lr,
            baseline_decay,
            entropy_weight,
            bins,
        )
        self.logits: dict[str, list[float]] = {}
        self.baseline: float | None = None
        self.adv_var = 1.0  # running mean square of the advantage, to make lr scale-free

    # ---- one decision: its number of options and the value <-> option index mapping ----------
    def _size(self, d: BaseDistribution) -> int:
        if isinstance(d, CategoricalDistribution):
            return len(d.choices)
        if isinstance(d, IntDistribution) and not d.log:
            n = (d.high - d.low) // d.step + 1
            if n <= 2 * self.bins:
                return n
        return self.bins

    def _index(self, d: BaseDistribution, value: Any) -> int:
        if isinstance(d, CategoricalDistribution):
            return d.choices.index(value)
        n = self._size(d)
        if isinstance(d, IntDistribution) and not d.log and n != self.bins:
            return (value - d.low) // d.step
        return min(n - 1, int(_unit(d, value) * n))

    def _value(self, d: BaseDistribution, index: int) -> Any:
        if isinstance(d, CategoricalDistribution):
            return d.choices[index]
        n = self._size(d)
        if isinstance(d, IntDistribution) and not d.log and n != self.bins:
            return d.low + index * d.step
        u = (index + self.rng.random()) / n
        lo, hi = (math.log(d.low), math.log(d.high)) if d.log else (d.low, d.high)
        x = lo + u * (hi - lo)
        x = math.exp(x) if d.log else x
        if isinstance(d, IntDistribution):
            return min(d.high, max(d.low, round(x)))
        return min(d.high, max(d.low, x))

    def _probs(self, name: str, size: int) -> list[float]:
        z = self.logits.setdefault(name, [0.0] * size)
        m = max(z)
        e = [math.exp(v - m) for v in z]
        s = sum(e)
        return [v / s for v in e]

    # ---- ask / tell ------------------------------------------------------------------------
    def ask(self) -> Arch:
        return self.space.suggest(_PolicyTrial(self))

    def update(self, arch: Arch, value: float | None) -> None:
        if value is None:
            return  # a failed trial says nothing about the policy
        reward = self.score(value)
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        self.baseline = self.decay * self.baseline + (1 - self.decay) * reward
        self.adv_var = self.decay * self.adv_var + (1 - self.decay) * advantage**2
        advantage /= math.sqrt(self.adv_var) + 1e-12
        params, dists = to_optuna(self.space, arch)
        for name, d in dists.items():
            size, chosen = self._size(d), self._index(d, params[name])
            p = self._probs(name, size)
            entropy = -sum(q * math.log(q) for q in p if q > 0)
            z = self.logits[name]
            for i in range(size):
                grad_logp = (1.0 if i == chosen else 0.0) - p[i]
                grad_entropy = -p[i] * (math.log(p[i]) + entropy) if p[i] > 0 else 0.0
                z[i] += self.lr * (advantage * grad_logp + self.entropy_weight * grad_entropy)

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "logits": self.logits,
            "baseline": self.baseline,
            "adv_var": self.adv_var,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.logits = {k: list(v) for k, v in state["logits"].items()}
        self.baseline, self.adv_var = state["baseline"], state["adv_var"]


def _unit(d: Any, value: float) -> float:
    if d.high == d.low:
        return 0.0
    if d.log:
        return (math.log(value) - math.log(d.low)) / (math.log(d.high) - math.log(d.low))
    return (value - d.low) / (d.high - d.low)


class _PolicyTrial(ReplayTrial):
    """Answers `suggest_*` by sampling each decision from the controller's policy."""

    def __init__(self, owner: Reinforce):
        super().__init__({})
        self.owner = owner

    def _take(self, name: str, dist: BaseDistribution) -> Any:
        o = self.owner
        p = o._probs(name, o._size(dist))
        index = o.rng.choices(range(len(p)), weights=p)[0]
        return o._value(dist, index)
