"""Where a search's driver spends its time, phase by phase, when NASORCH_PROFILE is set.

`benchmarks/startup.py` prints it to show what a 1-trial search costs beyond bare Ray Tune; it
is as cheap as a clock read when off.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

ENABLED = bool(os.environ.get("NASORCH_PROFILE"))
_started = time.perf_counter()
_phases: list[tuple[str, float]] = []


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    if not ENABLED:
        yield
        return
    began = time.perf_counter()
    try:
        yield
    finally:
        _phases.append((name, time.perf_counter() - began))


def report(stream=None) -> None:
    """One `[profile]` line per phase, and the time since nasorch was imported."""
    if not ENABLED:
        return
    stream = stream or sys.stderr
    for name, seconds in _phases:
        stream.write(f"[profile] {name:28s} {seconds:6.2f} s\n")
    total = time.perf_counter() - _started
    stream.write(f"[profile] {'since nasorch was imported':28s} {total:6.2f} s\n")
    with contextlib.suppress(Exception):  # psutil comes with Ray
        import psutil

        alive = time.time() - psutil.Process().create_time()
        stream.write(f"[profile] {'since the process started':28s} {alive:6.2f} s\n")
    _phases.clear()
