"""Processes the integration tests start for real (Ray nodes, MLflow servers, nasorch drivers)
and stop exactly: each in its own process group, stopped by group, never with a bare `ray stop`.
Also the few MLflow REST calls the checks need."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that were free a moment ago (all held open at once, so no repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    # A cluster bound to this machine for a test needs no token; say so rather than inherit.
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT))
    # The server's background job runner is not used here and costs CPU while starting.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


class ProcessGroups:
    """Starts commands, each in its own session, and stops each one's whole process group:
    SIGTERM to all at once, then SIGKILL for whatever is left (Ray's raylet and GCS outlive a
    plain SIGTERM). Used as a context manager, so stopping happens even when a step fails."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], log: Path, **kwargs) -> subprocess.Popen:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            alive = [p for p in self.procs if _group_alive(p.pid)]
            for proc in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.monotonic() + grace
            while alive and time.monotonic() < deadline:
                for proc in alive:
                    proc.poll()  # reap the leader, or the group never looks gone
                alive = [p for p in alive if _group_alive(p.pid)]
                time.sleep(0.1)
            if not alive:
                return

    @staticmethod
    def kill_group(pgid: int) -> None:
        """SIGKILL whatever is left of a process group (a test's last resort)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def __enter__(self) -> ProcessGroups:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(check, what: str, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tails(logs)}")


def tails(logs: list[Path], chars: int = 3000) -> str:
    parts = []
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        parts.append(f"--- {log.name} ---\n{text[-chars:]}")
    return "\n".join(parts)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def ray_start(ports: list[int], *extra: str) -> list[str]:
    """`ray start --block` with every port it opens chosen here, so that it can run beside any
    other Ray on this machine (other tests, other users) without taking their ports."""
    node_manager, object_manager, agent, agent_grpc, runtime_env, metrics = ports
    return [
        str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", str(100 * 1024**2),
        "--node-manager-port", str(node_manager), "--object-manager-port", str(object_manager),
        "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port",
        str(agent_grpc), "--runtime-env-agent-port", str(runtime_env),
        "--metrics-export-port", str(metrics), "--min-worker-port", "0", "--max-worker-port", "0",
        "--disable-usage-stats", *extra,
    ]  # fmt: skip


class Rest:
    """The few MLflow REST calls the checks need."""

    def __init__(self, base: str):
        self.base = base.rstrip("/") + "/api/2.0/mlflow/"

    def call(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def runs(self, experiment: str) -> list[dict]:
        exp = self.call(f"experiments/get-by-name?experiment_name={experiment}")["experiment"]
        body = {"experiment_ids": [exp["experiment_id"]], "max_results": 1000}
        return self.call("runs/search", body).get("runs", [])

    def history(self, run_id: str, key: str) -> list[dict]:
        got = self.call(f"metrics/get-history?run_id={run_id}&metric_key={key}")
        return sorted(got.get("metrics", []), key=lambda m: int(m.get("step", 0)))


def tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def nasorch_cmd(config: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orchestrator.commands.cli",
        "run",
        str(config),
        "--quiet",
        *extra,
    ]


def count_alive_nodes(address: str, env: dict[str, str]) -> int:
    code = (
        f"import ray; ray.init(address={address!r}, log_to_driver=False, logging_level='ERROR'); "
        "print('alive nodes:', sum(n['Alive'] for n in ray.nodes()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    # Ray may print to stdout too (a loaded machine's warnings): read the marked line only.
    marked = [line for line in out.stdout.splitlines() if line.startswith("alive nodes:")]
    return int(marked[-1].split()[-1]) if out.returncode == 0 and marked else 0


def join_node(
    groups: ProcessGroups, cmd: list[str], log: Path, logs: list[Path], *, address: str,
    env: dict[str, str], cwd: Path, tries: int = 3,
) -> subprocess.Popen:  # fmt: skip
    """Start `ray start --address` (`cmd`) once the head answers, and again if the node gives
    up: on a loaded machine the head can answer after the node's startup deadline ("The current
    node timed out during startup"). Returns the node's process once the cluster has 2 nodes."""
    wait_for(lambda: count_alive_nodes(address, env) >= 1, "the Ray head", 90, logs)
    for _ in range(tries):
        proc = groups.start(cmd, log, env=env, cwd=cwd)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if count_alive_nodes(address, env) == 2:
                return proc
            time.sleep(0.25)
        if proc.poll() is None:
            break  # running but not joined: no second try would do better
        groups.kill_group(proc.pid)  # whatever the failed start left behind
    pytest.fail(f"the second Ray node did not join\n{tails(logs)}")


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and everything it started (its Ray, its MLflow writer): no cleanup."""
    try:
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = [proc.pid]
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # And its process group (the drivers start in a session of their own): a process started
    # after the listing above, or orphaned before it, would otherwise outlive the "crash" and
    # might hold a file lock the resumed search then waits on.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=30)


class MlflowServer:
    """`mlflow server` on a fixed loopback port and backend, stopped and started at will."""

    def __init__(self, root: Path, env: dict):
        (self.port,) = free_ports(1)
        self.root, self.env, self.log = root, env, root / "mlflow.log"
        self.uri = f"http://127.0.0.1:{self.port}"
        self.group: ProcessGroups | None = None

    def start(self) -> None:
        cmd = [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db", "--serve-artifacts",
            "--artifacts-destination", str(self.root / "mlartifacts"), "--workers", "1",
        ]  # fmt: skip
        self.group = ProcessGroups()
        self.group.start(cmd, self.log, env=self.env, cwd=self.root)
        wait_for(lambda: http_ok(f"{self.uri}/health"), "the MLflow server", 90, [self.log])

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()
            self.group = None


def process_tree(pids: list[int]) -> list[psutil.Process]:
    """The processes `pids` and all their descendants as they are now (those gone are skipped):
    what a test checks is no longer running once it has stopped everything."""
    found: list[psutil.Process] = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            found += [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
    return found
