"""`nasorch simulate --address`: the grid's runs as Ray tasks on a real two-node cluster give the
same files as local processes, and a cluster it cannot reach is one line.

The cluster is `ray start` twice on this machine (a head and a second node, 1 CPU each, bound to
127.0.0.1, every port chosen here), stopped by process group at the end; the simulations run in
their own `nasorch` processes, so the pytest process's own Ray stays out of it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.commands.cli import main
from tests.helpers_procs import (
    ProcessGroups,
    clean_env,
    free_ports,
    join_node,
    port_open,
    ray_start,
    tails,
    wait_for,
)

GRID = [
    "--source", "nb201", "--combos", "random+asha,random+fifo", "--workers", "4",
    "--seeds", "2", "--budget", "2", "--no-plots",
]  # fmt: skip
TIMING = ("cpu_searcher_s", "cpu_scheduler_s", "cpu_bookkeeping_s", "cpu_ms_per_trial", "cpu_s")


@pytest.mark.parametrize(
    "address, message",
    [("127.0.0.1:1", "cannot connect to Ray at 127.0.0.1:1"), ("nowhere", "expected auto")],
)
def test_a_cluster_it_cannot_reach_is_one_line(tmp_path, capsys, address, message):
    out = tmp_path / "sim"
    status = main(["simulate", *GRID, "--address", address, "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists()  # refused before any file was written


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    """A Ray head and a second node, 1 CPU each; stopped, by process group, at the end."""
    # A short root: Ray's unix sockets live under it and their paths are limited to 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="nasorch-sr-"))
    env = clean_env()
    gcs, *ports = free_ports(1 + 12)
    address = f"127.0.0.1:{gcs}"
    logs = [tmp / "head.log", tmp / "worker.log"]
    try:
        with ProcessGroups() as groups:
            head = ray_start(
                ports[:6], "--head", "--port", str(gcs), "--include-dashboard", "false",
                "--temp-dir", str(tmp / "ray"),
            )  # fmt: skip
            groups.start(head, logs[0], env=env, cwd=tmp)
            wait_for(lambda: port_open(gcs), "the Ray head's GCS", 60, logs)
            worker = ray_start(ports[6:], "--address", address, "--temp-dir", str(tmp / "ray"))
            join_node(groups, worker, logs[1], logs, address=address, env=env, cwd=tmp)
            yield {"address": address, "tmp": tmp, "env": env, "logs": logs}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def simulate(cluster: dict, name: str, *extra: str) -> Path:
    out = cluster["tmp"] / name
    cmd = [sys.executable, "-m", "orchestrator.commands.cli", "simulate", *GRID, "--out", str(out)]
    done = subprocess.run(
        [*cmd, *extra], env=cluster["env"], cwd=cluster["tmp"], capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{tails(cluster['logs'])}"
    assert "CPU-hours in all" in done.stdout
    return out


@pytest.mark.integration
def test_a_grid_on_a_ray_cluster_gives_the_same_files_as_local_processes(cluster):
    on_ray = simulate(cluster, "on_ray", "--address", cluster["address"])
    local = simulate(cluster, "local")
    ray_runs, local_runs = (pd.read_csv(d / "runs.csv") for d in (on_ray, local))
    assert len(ray_runs) == 4 and (ray_runs["cpu_s"] > 0).all()
    # Every column but the CPU timings, row for row in the grid's order; the other files whole.
    pd.testing.assert_frame_equal(
        ray_runs.drop(columns=list(TIMING)), local_runs.drop(columns=list(TIMING))
    )
    for name in ("trajectory.csv", "rungs.csv", "summary.csv"):
        assert (on_ray / name).read_text() == (local / name).read_text(), name
