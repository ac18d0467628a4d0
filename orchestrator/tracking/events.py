"""What a trial's events mean, independent of where they are written: Ray's bookkeeping keys,
a trial's status, the metrics it reported, and which repeats of a metric are worth logging.
No Ray, no MLflow."""

from __future__ import annotations

from typing import Any

from orchestrator.core import tags as T

# Keys Ray Tune adds to every result; they are bookkeeping, not the trial's metrics.
TUNE_KEYS = {
    "timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
    "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "time_since_restore",
    "iterations_since_restore", "experiment_tag", "config", "should_checkpoint", "epoch",
}  # fmt: skip
STATUS_TO_MLFLOW = {
    "completed": "FINISHED",
    "stopped_early": "FINISHED",
    "errored": "FAILED",
    "reused": "FINISHED",  # answered from an earlier search's record (orchestrator/warm_start)
}


def status_of(
    errored: bool, last: dict, max_epochs: int | None = None, stopped: bool = False
) -> str:
    """completed / stopped_early / errored. Ray sets `done` on scheduler stops too, so a stop is
    known from the scheduler (`stopped`) or from fewer epochs than the trainable's budget. A
    trial that reached its budget is complete even if the scheduler once chose to stop it: a
    crash between that choice and the stop lets the resumed trial train on."""
    if errored:
        return "errored"
    reached = last.get("training_iteration", 0)
    if max_epochs is not None:
        return "stopped_early" if reached < max_epochs else "completed"
    return "stopped_early" if stopped else "completed"


def trial_status(trial: Any, max_epochs: int | None = None, scheduler: Any = None) -> str:
    stopped = trial.trial_id in (getattr(scheduler, "stop_reasons", None) or {})
    return status_of(trial.status == "ERROR", trial.last_result or {}, max_epochs, stopped)


def reported_metrics(result: dict) -> dict[str, float]:
    """The trainable's own numbers in a Ray result (not Tune's bookkeeping)."""
    return {
        k: float(v)
        for k, v in result.items()
        if k not in TUNE_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class RepeatFilter:
    """A metric that keeps its first value (`num_params` every epoch, a fixed `hp_lr`) is
    logged once, not as a flat curve: its repeats are held back, and written at their own steps
    only if it changes after all. The search's metric (`always`) is always logged."""

    def __init__(self, always: str | None):
        self.always = always
        self.trials: dict[str, dict] = {}  # trial id -> metric -> (first value, held) | False

    def start(self, trial_id: str, logged: dict[str, float]) -> None:
        """Values already logged for the trial (the gate's costs, at step 0)."""
        self.trials[trial_id] = {k: (v, []) for k, v in logged.items()}

    def end(self, trial_id: str) -> None:
        self.trials.pop(trial_id, None)

    def __call__(
        self, trial_id: str, metrics: dict[str, float], step: int, ts: int
    ) -> list[tuple[dict[str, float], int, int]]:
        """The (metrics, step, timestamp) points to log for this result."""
        steady = self.trials.setdefault(trial_id, {})
        current: dict[str, float] = {}
        held: dict[tuple[int, int], dict[str, float]] = {}
        for key, value in metrics.items():
            seen = steady.get(key)
            if key == self.always or seen is False:
                current[key] = value
            elif seen is None:
                steady[key] = (value, [])
                current[key] = value
            elif value == seen[0] or (value != value and seen[0] != seen[0]):  # NaN too
                seen[1].append((step, ts))
            else:  # it changes after all: its held-back points first
                for at in seen[1]:
                    held.setdefault(at, {})[key] = seen[0]
                steady[key] = False
                current[key] = value
        out = [(values, at, stamp) for (at, stamp), values in sorted(held.items())]
        return [*out, (current, step, ts)] if current else out


def gpu_hours(seconds: dict[str, float], gpu_per_trial: float) -> float:
    """GPU-hours held: each trial's running time (Ray's `time_total_s`) times its share of a GPU
    (`resources.gpu`), summed. The accelerator budget and the hours on the parent run count
    with it."""
    return sum(seconds.values()) * gpu_per_trial / 3600


class DeviceUse:
    """Which device each trial trained on (the trainable's `device` result, e.g. `cpu` or
    `cuda:0 NVIDIA H200`) and for how long: a trial's device tag, the one warning when trials
    given GPUs trained on the CPU, and the accelerator hours used next to those reserved."""

    def __init__(self, gpu_per_trial: float = 0.0):
        self.gpu = float(gpu_per_trial)
        self.devices: dict[str, str] = {}  # trial id -> device
        self.seconds: dict[str, float] = {}  # trial id -> its running time so far
        self.warned = False

    def note(self, trial_id: str, name: str, result: dict) -> tuple[dict[str, str], str | None]:
        """(tags for the trial's run when its device is first seen, a warning or None)."""
        self.seconds[trial_id] = float(result.get("time_total_s") or 0.0)
        device = result.get("device")
        if not isinstance(device, str) or trial_id in self.devices:
            return {}, None
        self.devices[trial_id] = device
        warning = None
        if device == "cpu" and (result.get("gpus_given") or 0) > 0 and not self.warned:
            self.warned = True
            warning = (
                f"nasorch: warning: trial {name} was given {self.gpu:g} GPU but trained on the "
                f"CPU (torch sees no usable CUDA device on node {result.get('node_ip', '?')}: a "
                "CPU-only torch, no driver, or a node that only advertises GPUs); each trial's "
                "device is its run's nasorch.device tag"
            )
        return {T.DEVICE: device}, warning

    def hours(self) -> dict[str, float]:
        """accelerator_hours_reserved: running time x resources.gpu over every trial;
        accelerator_hours_used: the same over the trials that trained on a CUDA device (only
        when the trainable says its device)."""
        if self.gpu <= 0:
            return {}
        out = {"accelerator_hours_reserved": gpu_hours(self.seconds, self.gpu)}
        if self.devices:
            cuda = {t for t, d in self.devices.items() if d.startswith("cuda")}
            on_gpu = {t: s for t, s in self.seconds.items() if t in cuda}
            out["accelerator_hours_used"] = gpu_hours(on_gpu, self.gpu)
        return out
