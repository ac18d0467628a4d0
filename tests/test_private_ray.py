"""A search without --address runs on a private Ray of its own, with token authentication.

Found by a new user: `ray.init()` joins any cluster started on the machine with `ray start` (it
reads `ray_current_cluster` in Ray's temp folder), so a laptop search died when that cluster
stopped, and a stale file from a dead cluster made every later search wait on a dead GCS. And a
local Ray listens on every interface: without a token anyone who reaches the laptop runs code.
Each test runs in a private RAY_TMPDIR and HOME, so it touches nothing of the machine's own Ray.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.helpers_procs import (
    ProcessGroups,
    clean_env,
    free_ports,
    nasorch_cmd,
    port_open,
    ray_start,
    tails,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox(request) -> Path:
    root = Path(tempfile.mkdtemp(prefix="nasorch-pr-"))  # short: Ray's socket paths are limited
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    (root / "tmp").mkdir()
    (root / "home").mkdir()
    return root


def slow_search(root: Path, name: str, trials: int = 4) -> Path:
    config = {
        "name": name,
        "metric": "score",
        "num_samples": trials,
        "max_concurrent_trials": 2,
        "search_space": {"name": "custom", "options": {"params": {"x": [1, 2, 3, 4, 5, 6]}}},
        "trainable": {"name": "tests.helpers:slow_epochs"},
        "dedupe": False,
        "storage_path": str(root / "results"),
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db"},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_search_never_joins_a_ray_started_on_this_machine(sandbox):
    """A `ray start` cluster on the same machine (same Ray temp folder) is stopped mid-search:
    the search does not notice. Then its stale `ray_current_cluster` does not stop the next."""
    env = clean_env()
    env["RAY_TMPDIR"] = str(sandbox / "tmp")
    gcs, *ports = free_ports(7)
    logs = [sandbox / "head.log", sandbox / "search1.log", sandbox / "search2.log"]
    with ProcessGroups() as head_group, ProcessGroups() as searches:
        head = ray_start(ports, "--head", "--port", str(gcs), "--include-dashboard", "false")
        head_group.start(head, logs[0], env=env, cwd=sandbox)
        wait_for(lambda: port_open(gcs), "the other Ray's head", 60, logs[:1])
        address_file = sandbox / "tmp" / "ray" / "ray_current_cluster"
        wait_for(address_file.is_file, "ray_current_cluster", 30, logs[:1])

        search = searches.start(nasorch_cmd(slow_search(sandbox, "one")), logs[1], env=env)
        results = sandbox / "results"
        started = lambda: any(results.glob("one-*/t00*"))  # noqa: E731
        wait_for(started, "the first search's trials", 120, logs)
        head_group.stop()  # the other cluster goes away mid-search (SIGTERM, then SIGKILL)
        assert search.wait(timeout=180) == 0, tails(logs)
        assert "Top 4 of 4 trials" in logs[1].read_text()

        assert address_file.is_file()  # stale now: nothing listens there
        assert not port_open(gcs)
        began = time.monotonic()
        again = searches.start(nasorch_cmd(slow_search(sandbox, "two", 2)), logs[2], env=env)
        assert again.wait(timeout=180) == 0, tails(logs)
        assert time.monotonic() - began < 120  # not Ray's minute of waiting on a dead GCS


def test_a_local_ray_is_not_open_to_the_network(sandbox):
    """Ray cannot bind its ports to loopback, so a local search runs it with token auth: every
    listener of the search's Ray that is reachable from outside refuses a caller without the
    token, and the token (created for the user) is readable by its owner only."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    env = clean_env()
    del env["RAY_AUTH_MODE"]  # the user did not choose: nasorch does
    env.update(RAY_TMPDIR=str(sandbox / "tmp"), HOME=str(sandbox / "home"))
    log = sandbox / "search.log"
    with ProcessGroups() as groups:
        driver = groups.start(nasorch_cmd(slow_search(sandbox, "open", trials=6)), log, env=env)
        results = sandbox / "results"
        wait_for(lambda: any(results.glob("open-*/t00*")), "the search's trials", 120, [log])
        procs = [psutil.Process(driver.pid), *psutil.Process(driver.pid).children(recursive=True)]
        listening = _listeners(procs)
        gcs_ports = [port for name, _, port in listening if name == "gcs_server"]
        token_file = sandbox / "home" / ".ray" / "auth_token"
        token = token_file.read_text().strip()
        # Ray's GCS, reachable from outside, answers only with the token.
        with grpc.insecure_channel(f"127.0.0.1:{gcs_ports[0]}") as channel:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            request = gcs_service_pb2.GetAllNodeInfoRequest()
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetAllNodeInfo(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = stub.GetAllNodeInfo(
                request, timeout=10, metadata=(("authorization", f"Bearer {token}"),)
            )
            assert len(answer.node_info_list) == 1
        assert driver.wait(timeout=180) == 0, tails([log])

    exposed = [(name, ip, port) for name, ip, port in listening if not ip.startswith("127.")]
    assert exposed, "expected Ray to listen beyond loopback (else this test checks nothing)"
    assert any(port == gcs_ports[0] for _, _, port in exposed)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def _listeners(procs: list[psutil.Process]) -> list[tuple[str, str, int]]:
    found = []
    for proc in procs:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((proc.name(), conn.laddr.ip, conn.laddr.port))
        except psutil.Error:
            continue
    return found
