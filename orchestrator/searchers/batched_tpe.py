"""Optuna's TPE, with one fit of its Parzen estimators serving several asks in a long search.

Optuna rebuilds TPE's two densities on every ask, in Python over every trial it holds: about
20 ms at 1,000 trials here, the most expensive decision of any searcher. Past `batch_after`
finished trials this sampler draws 1 + finished // `batch_after` proposals (at most
`_common.MAX_BATCH`) from one fit, each the best of its own `n_ei_candidates` draws by TPE's
acquisition, exactly as Optuna picks one, and serves them to the next asks; the batch goes stale
after as many trials have finished as it held. Below `batch_after` it is Optuna's TPE, draw for
draw. The queue is part of the sampler, so it is pickled with it (an exact resume).
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from orchestrator.compat import optuna_tpe_proposals
from orchestrator.searchers._common import batch_size


class BatchedTPESampler(TPESampler):
    def __init__(self, *args: Any, batch_after: int | None = 250, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Batches only where one proposal is a plain `_sample`: the constant liar reads the
        # running trials and `group` samples sub-spaces, both per ask.
        plain = not kwargs.get("constant_liar") and not kwargs.get("group")
        self.batch_after = batch_after if plain else None
        self.startup = kwargs.get("n_startup_trials", 10)  # TPESampler's default
        self.finished = 0  # set by the strategy before each ask: trials told in the whole search
        self.queue: list[dict[str, Any]] = []
        self.space: dict[str, BaseDistribution] | None = None  # the queue's search space
        self.told_since = 0  # trials finished since the queue was drawn
        self.drawn = 0  # proposals the queue held when drawn

    def _fresh(self) -> bool:
        return bool(self.queue) and self.told_since < self.drawn

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self._fresh() and search_space == self.space:
            return self.queue.pop(0)
        batch = batch_size(self.finished, self.batch_after)
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        if batch == 1 or not search_space or len(study.get_trials(False, states)) < self.startup:
            self.queue = []
            return super().sample_relative(study, trial, search_space)
        proposals = optuna_tpe_proposals(self, study, search_space, batch)
        self.queue, self.space = proposals[1:], dict(search_space)
        self.told_since, self.drawn = 0, batch
        return proposals[0]

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any):
        self.told_since += 1
        super().after_trial(study, trial, state, values)
