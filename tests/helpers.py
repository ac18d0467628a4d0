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


def slow_epochs(config):
    """Three epochs of ~0.4 s that checkpoint their epoch; a resumed trial continues from it."""
    import json
    import os
    import tempfile
    import time

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d, open(os.path.join(d, "epoch.json")) as f:
            start = json.load(f)["epoch"]
    for epoch in range(start + 1, 4):
        time.sleep(0.4)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "epoch.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            score = config["arch"]["x"] * epoch
            tune.report({"score": score}, checkpoint=tune.Checkpoint.from_directory(d))


def many_reports(config):
    """25 quick reports: for counting that every point reaches MLflow."""
    for epoch in range(1, 26):
        tune.report({"score": config["arch"]["x"] + epoch, "epoch": epoch})


def paced(config):
    """Four epochs of 1 s each, checkpointed: a search of these lasts long enough to stop a
    tracking server under it and start it again."""
    import json
    import os
    import tempfile
    import time

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d, open(os.path.join(d, "epoch.json")) as f:
            start = json.load(f)["epoch"]
    for epoch in range(start + 1, 5):
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "epoch.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            score = config["arch"]["x"] * epoch
            tune.report({"score": score}, checkpoint=tune.Checkpoint.from_directory(d))
