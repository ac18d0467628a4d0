"""Trainables used by tests as `module:function` user trainables."""

from ray import tune


def noop(config):
    """Reports a deterministic score for 3 epochs; the score depends on the arch only."""
    arch = config["arch"]
    score = sum(len(str(v)) for v in arch.values()) / 100.0
    for epoch in range(1, 4):
        tune.report({"score": score * epoch, "epoch": epoch})


def fails(config):
    raise RuntimeError("boom: this trial always fails")
