"""Trainables used by tests as `module:function` user trainables, and `require`: a test's
optional dependency, skipped locally but a failure in CI."""

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

from ray import tune


def _missing(what: str) -> None:
    """Skip the test, or fail it under CI=true: CI installs everything (`.ci/run`), so there a
    missing dependency is a broken install that a skip would hide."""
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI installs everything: see .ci/run)", pytrace=False)
    pytest.skip(what, allow_module_level=True)  # also at import: a module of such tests


def require(module: str, extra: str = "dev") -> ModuleType:
    """`module` imported, or the test skipped (failed under CI=true) naming the extra it is in."""
    try:
        return importlib.import_module(module)
    except ImportError:
        _missing(f"{module} is not installed (pip install -e '.[{extra}]')")
        raise  # unreachable: skip and fail raise; for type checkers


def require_program(*names: str) -> str:
    """The path of the first of `names` on PATH, or the test skipped (failed under CI=true)."""
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found is None:
        _missing(f"{names[0]} is not installed (.ci/run installs it with apt-get)")
    return found


def require_file(path: Path, what: str) -> Path:
    """`path`, or the test skipped (failed under CI=true) saying what the file is."""
    if not path.exists():
        _missing(f"{path} not found ({what})")
    return path


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
