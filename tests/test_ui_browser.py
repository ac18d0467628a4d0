"""The MLflow UI in a real browser: a real `mlflow server` on a store holding a finished search,
its runs page rendered by headless Chromium, driven over the DevTools protocol (click the parent's
expander like a person would), and checked for the readable run names."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import orchestrator
from orchestrator.tracking.session import runs_page_url
from tests.helpers import require_program

pytestmark = pytest.mark.integration

# Where NASORCH_UPDATE_DOCS_IMG=1 puts the screenshots that docs/getting-started/mlflow-ui.md shows.
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"

CHROMIUM = require_program("chromium", "chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def served(ray_local, tmp_path_factory):
    """A small finished search and `mlflow server` on its store, bound to loopback. The server
    boots (15-25 s) while the search runs; it is stopped even when something fails."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{root}/mlflow.db"
    MlflowClient(uri).search_experiments()  # the schema first: server and search share the file
    port = _free_port()
    log = open(root / "server.log", "w")
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", uri, "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        result = orchestrator.run(
            {
                "name": "ui-check",
                "metric": "score",
                "num_samples": 4,
                "search_space": {
                    "name": "custom",
                    "options": {"params": {"a": ["x", "yy", "zzz"], "b": [1, 2]}},
                },
                "trainable": {"name": "tests.helpers:noop"},
                "storage_path": str(root / "ray"),
                "tracking": {"uri": uri},
            },
            progress=False,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start; see {log.name}") from None
                time.sleep(0.5)
        yield result, url
    finally:
        _stop(proc)
        log.close()


class Page:
    """One Chromium tab over the DevTools protocol (aiohttp comes with ray[default])."""

    def __init__(self, ws):
        self.ws, self.n = ws, 0

    async def call(self, method: str, **params) -> dict:
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:  # skip the events Chromium sends meanwhile
            msg = await self.ws.receive_json(timeout=30)
            if msg.get("id") == self.n:
                return msg.get("result", {})

    async def js(self, expression: str):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    async def wait_for_text(self, texts: list[str], timeout: float = 30) -> str:
        """The page's visible text once every one of `texts` shows (the SPA renders late)."""
        deadline = time.monotonic() + timeout
        while True:
            body = await self.js("document.body ? document.body.innerText : ''") or ""
            if all(t in body for t in texts) or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.3)

    async def screenshot(self, path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))


async def _browse(profile, scenario):
    import aiohttp

    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
           "--remote-debugging-port=0", "--window-size=1600,1000", "about:blank"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes its chosen port here
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None, "chromium did not start"
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as http:
            targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            tab = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Emulation.setDeviceMetricsOverride", width=1600, height=1000,
                                deviceScaleFactor=1, mobile=False)  # fmt: skip
                return await scenario(page)
    finally:
        _stop(proc)


def test_runs_page_shows_the_search_and_its_trials_by_name(served, tmp_path):
    search, server = served
    children = sorted(search.trials["run_id"])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(search.tracking_uri)
    parent_name = client.get_run(search.parent_run_id).info.run_name
    child_names = [client.get_run(r).info.run_name for r in children]
    assert parent_name.startswith("ui-check · random+fifo · ")
    assert all(n[:2] == "t0" and " a=" in n for n in child_names), child_names

    async def scenario(page: Page):
        await page.call("Page.navigate", url=runs_page_url(server, search.experiment_id))
        collapsed = await page.wait_for_text([parent_name])
        # MLflow nests child runs under a collapsed parent row: expand it as a user would.
        clicked = await page.js(
            f"""(() => {{
                const b = document.querySelector('.ag-row[row-id="{search.parent_run_id}"] button');
                if (b) b.click();
                return Boolean(b); }})()"""
        )
        expanded = await page.wait_for_text(child_names)
        await page.screenshot(tmp_path / "runs_page.png")
        run_page = f"{server}/#/experiments/{search.experiment_id}/runs/{search.parent_run_id}"
        # The parent run's artifacts, opened on one of the plots (MLflow selects the path).
        plot = "artifacts/plots/learning_curves.png?workflowType=machine_learning"
        await page.call("Page.navigate", url=f"{run_page}/{plot}")
        artifacts = await page.wait_for_text(["learning_curves.png", "leaderboard.md"])
        await asyncio.sleep(1.5)  # the preview image loads after the tree
        await page.screenshot(tmp_path / "parent_artifacts.png")
        return collapsed, clicked, expanded, artifacts

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    collapsed, clicked, expanded, artifacts = asyncio.run(_browse(profile, scenario))
    keep = os.environ.get("NASORCH_TEST_ARTIFACTS")
    if keep:  # CI keeps the screenshots for people to look at
        os.makedirs(keep, exist_ok=True)
        for name in ("runs_page.png", "parent_artifacts.png"):
            if (tmp_path / name).exists():
                shutil.copy(tmp_path / name, keep)
    if os.environ.get("NASORCH_UPDATE_DOCS_IMG"):  # the docs' screenshots (docs/img, committed)
        for name in ("runs_page.png", "parent_artifacts.png"):
            if (tmp_path / name).exists():
                shutil.copy(tmp_path / name, DOCS_IMG / f"mlflow_{name}")
    assert "Runs" in collapsed and parent_name in collapsed, collapsed[:2000]
    assert "GenAI apps" not in collapsed  # the model-training layout, not the GenAI overview
    assert clicked, "no expander on the parent run's row"
    for name in child_names:
        assert name in expanded, (name, expanded[:2000])
    assert "leaderboard.md" in artifacts and "learning_curves.png" in artifacts, artifacts[:2000]
    assert (tmp_path / "runs_page.png").stat().st_size > 10_000
