"""For your own training loop (`trainable.name: module:function`): checkpoints kept the way
nasorch's torch loop keeps them, so a custom loop keeps resume after a crash, retries from the
last checkpoint, PBT exploits and the search's best model.

    from orchestrator import trial

    def train(config):
        model, optimizer = build(config["arch"]), ...
        start = trial.restore(model, optimizer)          # 0, or the epoch a checkpoint reached
        for epoch in range(start + 1, config["trainable_options"]["epochs"] + 1):
            ...
            trial.report({"val_accuracy": acc}, epoch=epoch, model=model, optimizer=optimizer)

The checkpoints are the torch trainable's own (`trainables.torch_loop.load_state` /
`report_state`): one format for both loops.
"""

from __future__ import annotations

from typing import Any


def restore(model: Any, optimizer: Any = None, *, scheduler: Any = None, scaler: Any = None) -> int:
    """Load the trial's last checkpoint into these objects, if it has one (a resumed, retried
    or exploited trial), and return the epoch it reached: the loop starts after it. 0 for a
    trial that starts afresh."""
    from trainables.torch_loop import load_state

    state = load_state(map_location="cpu")
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None and state.get(name) is not None:
            obj.load_state_dict(state[name])
    return int(state["epoch"])


def report(
    metrics: dict[str, Any],
    *,
    epoch: int,
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    scaler: Any = None,
) -> None:
    """Report one epoch's metrics (they must include the search's `metric`); with `model`, a
    checkpoint of it and of the optimizer, learning-rate scheduler and AMP scaler given, which
    `restore` loads. Report once per epoch: schedulers count epochs in reports."""
    from ray import tune

    metrics = {**metrics, "epoch": epoch}
    if model is None:
        tune.report(metrics)
        return
    from trainables.torch_loop import report_state

    state = {"model": model.state_dict(), "epoch": epoch}
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        state[name] = obj.state_dict() if obj is not None else None
    report_state(metrics, state)
