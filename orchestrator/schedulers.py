"""Schedulers ("when to stop"): Ray Tune's own, by name. Each factory takes the trial budget in
epochs (`max_t`, from the trainable's options when it has any) and the scheduler's options."""

from __future__ import annotations

from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    TrialScheduler,
)


def fifo(max_t: int) -> TrialScheduler:
    return FIFOScheduler()


def asha(
    max_t: int, grace_period: int = 1, reduction_factor: float = 3, brackets: int = 1
) -> TrialScheduler:
    if grace_period < 1 or grace_period > max_t:
        raise ValueError(
            f"grace_period must be between 1 and max epochs ({max_t}), got {grace_period}"
        )
    if reduction_factor <= 1:
        raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
    return AsyncHyperBandScheduler(
        time_attr="training_iteration",
        max_t=max_t,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        brackets=brackets,
    )


def hyperband(max_t: int, reduction_factor: float = 3) -> TrialScheduler:
    if reduction_factor <= 1:
        raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
    return HyperBandScheduler(
        time_attr="training_iteration", max_t=max_t, reduction_factor=reduction_factor
    )


def median(max_t: int, grace_period: int = 1, min_samples_required: int = 3) -> TrialScheduler:
    return MedianStoppingRule(
        time_attr="training_iteration",
        grace_period=grace_period,
        min_samples_required=min_samples_required,
    )


SCHEDULERS = {
    "fifo": fifo,
    "asha": asha,
    "hyperband": hyperband,
    "median": median,
}
