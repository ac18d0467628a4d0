"""`nasorch ui`: MLflow's UI on the local store, bound to loopback, stopped whole.

MLflow's server is a tree of processes (its CLI, uvicorn and its workers, a job runner); a
signal to the CLI alone leaves the rest serving the port. The server runs in its own process
group, and SIGINT or SIGTERM to `nasorch ui` stops that whole group. Its start-up chatter (INFO
logs, library deprecation warnings) is filtered; its errors are not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from orchestrator.tracking import session

# Lines of MLflow's server that tell a UI user nothing.
NOISE = (
    " INFO ",
    "INFO:",
    "DeprecationWarning",
    "FutureWarning",
    "warnings.warn(",
    "Registry store URI not provided",
    "[MLflow] Security middleware enabled",
)


def serve(uri: str, host: str, port: int, on_up=None) -> int:
    """Runs the UI until it exits or this process is told to stop; returns its exit status."""
    if uri.startswith("sqlite:///"):
        session.client_for(uri)  # create / migrate the store under the lock searches also take
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", host, "--port", str(port), "--workers", "1"]
    env = {
        **os.environ,
        "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # a job runner the UI does not need
    }
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    threading.Thread(target=_relay, args=(server.stdout,), daemon=True).start()
    stop = threading.Event()

    def request_stop(signum, frame):
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_up is not None:
            on_up()
        while server.poll() is None and not stop.is_set():
            stop.wait(0.2)
    finally:
        stop_group(server)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if stop.is_set() else (server.returncode or 0)


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM to the process group, SIGKILL to what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or its group never looks gone
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _relay(stream: IO[bytes]) -> None:
    in_warning = False  # a warning's source line follows it, indented
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        if in_warning and line.startswith((" ", "\t")):
            continue
        in_warning = "Warning:" in line
        if line.strip() and not in_warning and not any(n in line for n in NOISE):
            sys.stderr.write(line)
            sys.stderr.flush()
