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


def _checkpointed_epochs(config, epochs: int, seconds: float) -> None:
    """`epochs` epochs of `seconds` each, checkpointing the epoch; a resumed or retried trial
    continues from its checkpoint. Reports `score` = arch x * epoch."""
    import json
    import os
    import tempfile
    import time

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d, open(os.path.join(d, "epoch.json")) as f:
            start = json.load(f)["epoch"]
    for epoch in range(start + 1, epochs + 1):
        time.sleep(seconds)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "epoch.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            score = config["arch"]["x"] * epoch
            tune.report({"score": score}, checkpoint=tune.Checkpoint.from_directory(d))


def slow_epochs(config):
    """Three epochs of ~0.4 s, checkpointed."""
    _checkpointed_epochs(config, 3, 0.4)


def many_reports(config):
    """25 quick reports: for counting that every point reaches MLflow."""
    for epoch in range(1, 26):
        tune.report({"score": config["arch"]["x"] + epoch, "epoch": epoch})


def paced(config):
    """Four epochs of 1 s each, checkpointed: a search of these lasts long enough to stop a
    tracking server under it and start it again."""
    _checkpointed_epochs(config, 4, 1.0)


def long_paced(config):
    """Forty epochs of 1 s each, checkpointed: far longer than any budget a test gives it."""
    _checkpointed_epochs(config, 40, 1.0)
