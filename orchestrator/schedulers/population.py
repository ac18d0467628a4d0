"""Population based training (PBT, and PB2's bandit-chosen explore step) on a trial's
hyperparameters, with every exploit written down so MLflow shows the lineage.

The searcher proposes architectures; PBT tunes top-level config keys (`lr`, `weight_decay`,
`dropout`) on top of them while they train. On an exploit the receiving trial takes the donor's
checkpoint, architecture and perturbed hyperparameters, and keeps its own `trial_number` and
`seed`, so it stays the same row and MLflow run. The torch trainable restores the checkpoint and
continues from the donor's epoch.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from ray import tune
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

from orchestrator import compat
from orchestrator.core import tags as T
from orchestrator.schedulers.stopping import TIME_ATTR

DEFAULT_HYPERPARAMS = {"lr": (1e-4, 1e-1), "weight_decay": (0.0, 1e-3), "dropout": (0.0, 0.5)}
KEEP = ("trial_number", "seed")  # the receiving trial's identity survives an exploit


def is_log(low: float, high: float) -> bool:
    """Bounds spanning a decade or more (a learning rate) are searched on a log scale."""
    return low > 0 and high / low >= 10


def sample(rng: random.Random, low: float, high: float) -> float:
    if is_log(low, high):
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


class Lineage:
    """Mixin for PBT and PB2: initial values, bounds, identity and the exploit records."""

    # Every epoch's checkpoint is kept: a receiving trial may restore a donor's checkpoint after
    # the donor has reported several newer ones (Ray deletes old ones when num_to_keep is set).
    keep_checkpoints: int | None = None
    bounds: dict[str, tuple[float, float]]

    def _setup_lineage(self, bounds: dict[str, tuple[float, float]], max_t: int) -> None:
        self.bounds, self.max_t = bounds, max_t
        self.stop_reasons: dict[str, str] = {}  # PBT stops no trial; kept for the tracker
        self.exploits: dict[str, list[dict[str, Any]]] = {}  # receiving trial id -> exploits
        self._epoch: dict[str, float] = {}  # trial id -> epoch of its latest result
        self._tagged: dict[str, int] = {}  # trial id -> exploits already sent as tags

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.initial_values(trial.config)
        # Ray's PBT refuses any searcher; ours proposes architectures only (compat explains).
        super().on_trial_add(compat.pbt_controller_without_searcher(tune_controller), trial)

    def initial_values(self, config: dict[str, Any]) -> None:
        """A searched value in the architecture is the starting point (clipped to the bounds);
        otherwise one is drawn from the bounds with the trial's own seed (reproducible)."""
        rng = random.Random(config.get("seed", 0))
        arch = config.get("arch") or {}
        for name, (low, high) in self.bounds.items():
            if name in config:
                continue
            value = arch.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                config[name] = min(max(float(value), low), high)
            else:
                config[name] = sample(rng, low, high)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        epoch = self._epoch[trial.trial_id] = result.get(TIME_ATTR, 0)
        if epoch >= self.max_t:
            # Its last epoch: an exploit now would only copy the donor, or redo its epochs.
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    # ---- the exploit step (compat.pbt_with_hooks calls these) ---------------------------
    def adjust_new_config(self, trial: Any, new_config: dict) -> dict:
        """The receiving trial keeps its identity; PB2's values stay within the bounds (PBT's
        x1.2 / x0.8 steps are clipped by `clip_to_bounds`, its public explore hook)."""
        for key in KEEP:
            if key in trial.config:
                new_config[key] = trial.config[key]
        return self.clip_to_bounds(new_config)

    def clip_to_bounds(self, config: dict) -> dict:
        for name, (low, high) in self.bounds.items():
            if isinstance(config.get(name), (int, float)):
                config[name] = min(max(float(config[name]), low), high)
        return config

    def on_exploit(self, trial: Any, donor: Any, donor_result: dict, old: dict) -> None:
        self.exploits.setdefault(trial.trial_id, []).append(
            {
                "epoch": self._epoch.get(trial.trial_id, 0),
                "donor": _name(donor),
                "donor_trial_id": donor.trial_id,
                "from_epoch": donor_result.get(TIME_ATTR, 0),
                "old": {k: old.get(k) for k in self.bounds},
                "new": {k: trial.config.get(k) for k in self.bounds},
            }
        )

    # ---- for the tracker ---------------------------------------------------------------
    def result_notes(self, trial_id: str, result: dict) -> tuple[dict[str, float], dict]:
        """Per result: the hyperparameters in force as metrics `hp_<name>` (MLflow params are
        immutable, curves show the changes), and the lineage tags after a new exploit."""
        config = result.get("config") or {}
        metrics = {
            f"hp_{k}": float(config[k])
            for k in self.bounds
            if isinstance(config.get(k), (int, float)) and not isinstance(config.get(k), bool)
        }
        count = len(self.exploits.get(trial_id, []))
        if count > self._tagged.get(trial_id, 0):
            self._tagged[trial_id] = count
            return metrics, self.trial_tags(trial_id)
        return metrics, {}

    def trial_tags(self, trial_id: str) -> dict[str, str]:
        history = self.exploits.get(trial_id)
        if not history:
            return {}
        last = history[-1]
        changes = ", ".join(
            f"{k} {_fmt(last['old'].get(k))} -> {_fmt(v)}" for k, v in last["new"].items()
        )
        return {
            T.PBT_DONOR: last["donor"],
            T.PBT_DONOR_TRIAL_ID: last["donor_trial_id"],
            T.PBT_EXPLOITS: str(len(history)),
            T.PBT_LAST_EXPLOIT: (
                f"epoch {last['epoch']:g}: took {last['donor']}'s checkpoint of epoch "
                f"{last['from_epoch']:g}; {changes}"
            ),
            T.PBT_LINEAGE: json.dumps(history, default=str)[:5000],
        }


class PBT(Lineage, compat.pbt_with_hooks(PopulationBasedTraining)):
    def __init__(self, bounds: dict[str, tuple[float, float]], max_t: int, **kwargs: Any):
        mutations = {
            name: tune.loguniform(low, high) if is_log(low, high) else tune.uniform(low, high)
            for name, (low, high) in bounds.items()
        }
        super().__init__(
            time_attr=TIME_ATTR,
            hyperparam_mutations=mutations,
            custom_explore_fn=self.clip_to_bounds,
            **kwargs,
        )
        self._setup_lineage(bounds, max_t)


def _name(trial: Any) -> str:
    return T.trial_name(T.trial_number(trial.config))


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
