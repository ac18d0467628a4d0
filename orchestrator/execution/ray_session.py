"""Which Ray a search runs on, and whether that Ray can run its trials at all.

A search without `--address` (and without RAY_ADDRESS, which `ray job submit` sets) starts its
own private Ray: never one that another process started on this machine with `ray start` (Ray's
default, through `/tmp/ray/ray_current_cluster`, even a stale one). Ray's processes listen on
every interface and have no option to bind to loopback, so that private Ray runs with Ray's token
authentication: the token lives in `~/.ray/auth_token` (created, readable by its owner only, when
missing), and nothing reaches it without that token. A user who sets RAY_AUTH_MODE decides.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

from orchestrator import compat
from orchestrator.config import ExperimentConfig
from orchestrator.core.errors import UserError, first_line
from orchestrator.execution import capacity


def init_ray(address: str | None) -> None:
    """A private local Ray by default; `address` joins an existing cluster."""
    import ray

    if address:  # a bad address is the user's error even when this process has Ray already
        _check_address(address)
    if ray.is_initialized():
        return
    logging.getLogger("ray").setLevel(logging.WARNING)
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        kwargs["address"] = address
    else:
        secure_local_ray()
        kwargs.update(address="local", include_dashboard=False, **compat.local_ray_init_kwargs())
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(
            f"--address: cannot connect to Ray at {address or 'local'}: {first_line(e)}"
        ) from None


def secure_local_ray() -> None:
    """Token authentication for a Ray this process starts, unless the user chose a mode."""
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    if not os.environ.get("RAY_AUTH_TOKEN"):
        path = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
        ensure_token_file(Path(path))
    os.environ["RAY_AUTH_MODE"] = "token"
    compat.refresh_ray_config()


def ensure_token_file(path: Path) -> None:
    """Ray's token file, created readable by its owner only when missing (Ray's own would be
    world-readable under a default umask)."""
    if path.is_file():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another search made it a moment ago
        return
    except OSError as e:
        raise UserError(
            f"RAY_AUTH_TOKEN_PATH: cannot create Ray's token file {path} ({e.strerror}); set "
            "RAY_AUTH_TOKEN_PATH to a writable file"
        ) from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))


def _check_address(address: str, timeout: float = 5.0) -> None:
    """A host:port that nothing listens on fails in seconds, not after Ray's long retries."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address: expected auto, host:port or ray://host:port, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(
            f"--address: cannot connect to Ray at {address}: {e.strerror or e}"
        ) from None


# Ray's messages that nasorch says better itself: for each resumed trial Ray looks for its
# result.json next to the experiment, where a crash may have left none (recovery.py reads the
# staging copy); after Ctrl+C it tells to resume with `Tuner.restore(...)`, nasorch with
# `nasorch resume`.
SILENCED = {
    "ray.tune.logger.logger": "Remote file not found",
    "ray.tune.tune": "Experiment has been interrupted",
}


def silence_ray_hints() -> None:
    for name, prefix in SILENCED.items():
        logger = logging.getLogger(name)
        if not any(getattr(f, "prefix", None) == prefix for f in logger.filters):
            logger.addFilter(_DropPrefix(prefix))


class _DropPrefix(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def trial_resources(cfg: ExperimentConfig) -> dict[str, float]:
    return {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu}


def tune_trainable(cfg: ExperimentConfig, trainable: Any) -> Any:
    """The trainable as Ray Tune runs it: its resources, and the user's network builder
    (trainable.options.model) handed to every trial by value (`model=`), so the nodes need not
    have the user's module."""
    from ray import tune

    fn = trainable.fn
    if trainable.builder is not None:
        ship_user_module(trainable.options["model"])
        fn = tune.with_parameters(fn, model=trainable.builder)
    return tune.with_resources(fn, trial_resources(cfg))


def connect(cfg: ExperimentConfig, address: str | None) -> None:
    # Ray warns when per-epoch checkpoints trigger many state snapshots; they are cheap here.
    # Their period is left to Ray (after trial checkpoints, else adaptive): a fixed 2 s period
    # halved throughput with 200 trials (benchmarks/overhead.py), and what a crash loses between
    # snapshots is redone on resume.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Our own progress line replaces Tune's console output (its new engine ignores verbose=0).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # MLflow prints "View run ... at: URL" for every run it ends on a server; we print our own.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    address = address or os.environ.get("RAY_ADDRESS")  # set by `ray job submit` for its job
    init_ray(address)
    silence_ray_hints()
    check_cluster_resources(cfg, address)
    uri = cfg.tracking_uri()
    if address and not uri.startswith(("http://", "https://")):
        # Safe (only this driver writes the store) but a cluster's records belong on its server.
        print(
            f"nasorch: warning: recording a cluster run into {uri}; set tracking.uri "
            "to the head's MLflow server (http://127.0.0.1:5000 on a `ray up` cluster)",
            file=sys.stderr,
        )


def check_cluster_resources(cfg: ExperimentConfig, address: str | None) -> None:
    """A trial that no node can ever hold would wait forever: say so now. On a cluster, the
    autoscaler's node types decide (when its config is found: see capacity.find_cluster_config)."""
    import ray

    cpu, gpu = cfg.resources.cpu, cfg.resources.gpu
    problem = capacity.check_resources(cpu, gpu, ray.nodes(), bool(address))
    if problem and not address:
        raise UserError(problem)
    if not problem:
        return
    path = capacity.find_cluster_config()
    if path is not None:
        try:
            verdict = capacity.check_node_types(
                cpu, gpu, capacity.load_cluster_config(path), str(path)
            )
        except ValueError as e:
            raise UserError(str(e)) from None
        if verdict is not None:
            line, fatal = verdict
            if fatal:
                raise UserError(line)
            print(f"nasorch: {line}", file=sys.stderr)
            return
    print(f"nasorch: note: {problem}", file=sys.stderr)


def ship_user_module(trainable_name: str) -> None:
    """A user's `module:function` trainable travels to the workers by value, so it works on a
    cluster whose nodes do not have the user's module installed."""
    if ":" not in trainable_name:
        return
    import ray.cloudpickle as cloudpickle

    module = importlib.import_module(trainable_name.partition(":")[0])
    if module.__name__.split(".")[0] not in ("orchestrator", "search_spaces", "trainables"):
        cloudpickle.register_pickle_by_value(module)
