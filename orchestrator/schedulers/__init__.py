"""Schedulers ("when to stop"), by name. Each factory takes the trial budget in epochs (`max_t`,
from the trainable's options when it has any) and the scheduler's options; metric and mode come
from the experiment config (the runner sets them on Tune's config).

Stopping schedulers record why they stopped a trial (`stop_reasons`, see orchestrator/stopping.py);
PBT and PB2 record every exploit (orchestrator/population.py). The MLflow tracker tags the
trials' runs with both.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from orchestrator.schedulers.fidelity import FidelityScheduler
from orchestrator.schedulers.one_epoch import OneEpochTopK
from orchestrator.schedulers.population import DEFAULT_HYPERPARAMS, PBT
from orchestrator.schedulers.stopping import ASHA, CurveStopping, Hyperband, MedianStopping


def fifo(max_t: int) -> TrialScheduler:
    return FIFOScheduler()


def asha(
    max_t: int, grace_period: int = 1, reduction_factor: float = 3, brackets: int = 1
) -> TrialScheduler:
    _check_epochs("grace_period", grace_period, max_t)
    _check_reduction(reduction_factor)
    return ASHA(
        max_t=max_t,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        brackets=brackets,
    )


def hyperband(max_t: int, reduction_factor: float = 3) -> TrialScheduler:
    _check_reduction(reduction_factor)
    return Hyperband(max_t=max_t, reduction_factor=reduction_factor)


def fidelity(max_t: int, grace_period: int = 1, reduction_factor: float = 3) -> TrialScheduler:
    """ASHA's rungs, promotion by the `fidelity` searcher's expected improvement."""
    _check_epochs("grace_period", grace_period, max_t)
    _check_reduction(reduction_factor)
    return FidelityScheduler(
        max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor
    )


def one_epoch(max_t: int, epoch: int = 1, top_k: int = 3) -> TrialScheduler:
    """Egele et al.'s baseline: `epoch` epochs each, the best `top_k` so far to the end."""
    _check_epochs("epoch", epoch, max_t)
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a whole number >= 1, got {top_k}")
    return OneEpochTopK(max_t=max_t, epoch=epoch, top_k=top_k)


def median(max_t: int, grace_period: int = 1, min_samples_required: int = 3) -> TrialScheduler:
    _check_epochs("grace_period", grace_period, max_t)
    return MedianStopping(
        grace_period=grace_period,
        min_samples_required=min_samples_required,
    )


def curve(max_t: int, grace_period: int = 3, margin: float = 0.02) -> TrialScheduler:
    """Learning-curve stopping: extrapolate each trial's curve to max_t, stop hopeless ones."""
    _check_epochs("grace_period", grace_period, max_t)
    if grace_period < 2:
        raise ValueError(f"grace_period must be at least 2 to fit a curve, got {grace_period}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    return CurveStopping(max_t=max_t, grace_period=grace_period, margin=margin)


def pbt(
    max_t: int,
    perturbation_interval: int = 2,
    quantile_fraction: float = 0.25,
    resample_probability: float = 0.25,
    hyperparams: dict[str, list[float]] | None = None,
    burn_in_period: int = 0,
) -> TrialScheduler:
    """Population based training of `hyperparams` ({name: [low, high]}) every
    `perturbation_interval` epochs."""
    _check_epochs("perturbation_interval", perturbation_interval, max_t)
    if not 0 <= quantile_fraction <= 0.5:
        raise ValueError(f"quantile_fraction must be between 0 and 0.5, got {quantile_fraction}")
    if not 0 <= resample_probability <= 1:
        raise ValueError(
            f"resample_probability must be between 0 and 1, got {resample_probability}"
        )
    return PBT(
        _bounds(hyperparams),
        max_t,
        perturbation_interval=perturbation_interval,
        burn_in_period=burn_in_period,
        quantile_fraction=quantile_fraction,
        resample_probability=resample_probability,
    )


def pb2(
    max_t: int,
    perturbation_interval: int = 2,
    quantile_fraction: float = 0.25,
    hyperparams: dict[str, list[float]] | None = None,
) -> TrialScheduler:
    """PB2 (Parker-Holder et al. 2020): PBT whose explore step is a GP bandit over the bounds."""
    _check_epochs("perturbation_interval", perturbation_interval, max_t)
    if not 0 <= quantile_fraction <= 0.5:
        raise ValueError(f"quantile_fraction must be between 0 and 0.5, got {quantile_fraction}")
    try:  # imported here: Ray's PB2 pulls in scikit-learn's GP (1.5 s) on import
        from orchestrator.schedulers.pb2 import PB2Lineage
    except ImportError as e:
        raise ValueError(
            f"pb2 needs {e.name or 'scikit-learn'}: pip install scikit-learn"
        ) from None
    return PB2Lineage(
        _bounds(hyperparams),
        max_t,
        perturbation_interval=perturbation_interval,
        quantile_fraction=quantile_fraction,
    )


def _bounds(hyperparams: dict[str, Any] | None) -> dict[str, tuple[float, float]]:
    if hyperparams is None:
        return dict(DEFAULT_HYPERPARAMS)
    if not isinstance(hyperparams, dict) or not hyperparams:
        raise ValueError("hyperparams must map names to [low, high], e.g. {lr: [1.0e-4, 0.1]}")
    bounds = {}
    for name, value in hyperparams.items():
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok or not 0 <= value[0] < value[1]:
            raise ValueError(f"hyperparams.{name}: expected [low, high] with 0 <= low < high")
        bounds[str(name)] = (float(value[0]), float(value[1]))
    return bounds


def _check_epochs(name: str, value: int, max_t: int) -> None:
    if not isinstance(value, int) or value < 1 or value > max_t:
        raise ValueError(f"{name} must be between 1 and max epochs ({max_t}), got {value}")


def _check_reduction(reduction_factor: float) -> None:
    if reduction_factor <= 1:
        raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")


SCHEDULERS = {
    "fifo": fifo,
    "asha": asha,
    "hyperband": hyperband,
    "median": median,
    "curve": curve,
    "fidelity": fidelity,
    "one_epoch": one_epoch,
    "pbt": pbt,
    "pb2": pb2,
}
