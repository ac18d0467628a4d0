"""`nasorch simulate --address`: the grid's runs as Ray tasks on a cluster.

`on_ray(fn, tasks, address)` has the shape of `setup.in_processes`: it yields (index, fn(*task))
as each run finishes, whichever node ran it. Each task carries its task tuple only (a few
names and numbers): the node imports `fn` from the installed project and builds the curve source
itself, once per worker process (`study._source`), as a real search's trials build theirs; so
every node needs the project installed (with `.[bench]` for LCBench) and the shared data where
`trainables.curves.data_path` looks (`../shared/data` or $NASORCH_DATA). A run is deterministic
given its tuple, so the results do not depend on how many nodes ran them, or where.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from orchestrator.core.errors import UserError, first_line
from orchestrator.execution.ray_session import init_ray


def on_ray(fn: Any, tasks: list[tuple], address: str) -> Iterator[tuple[int, Any]]:
    """(index, fn(*task)) for every task, as each finishes, one Ray task of one CPU per run on
    the cluster at `address` (`auto`, host:port, ray://host:10001)."""
    import ray

    ours = not ray.is_initialized()  # a caller's own Ray connection stays theirs to close
    init_ray(address)  # now, not at the first result: a bad address is one line before any file
    return _as_finished(ray, fn, tasks, ours)


def _as_finished(ray: Any, fn: Any, tasks: list[tuple], ours: bool) -> Iterator[tuple[int, Any]]:
    # Every run is submitted at once: an autoscaler sees the whole grid's demand, and Ray
    # queues what the cluster cannot run yet. Ray retries a run whose node died (max_retries).
    remote = ray.remote(fn).options(num_cpus=1)
    index = {remote.remote(*task): i for i, task in enumerate(tasks)}
    pending = list(index)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = index.pop(ref)
                yield i, _result(ray, ref, tasks[i])
    finally:
        for ref in pending:  # cut short (Ctrl+C, a failed run): nothing keeps running for us
            ray.cancel(ref, force=True)
        if ours:
            ray.shutdown()


def _result(ray: Any, ref: Any, task: tuple) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:  # the run raised: its own error, in one line
        cause = e.cause if isinstance(e.cause, BaseException) else e
        message = str(cause) if isinstance(cause, UserError) else _named(cause)
        raise UserError(f"simulate: run {_label(task)} failed on the cluster: {message}") from None
    except ray.exceptions.RayError as e:  # its worker or node was lost beyond Ray's retries
        raise UserError(f"simulate: run {_label(task)} was lost: {_named(e)}") from None


def _named(error: BaseException) -> str:
    return f"{type(error).__name__}: {first_line(error, 300)}"


def _label(task: tuple) -> str:
    source, combo, workers, seed = task[:4]
    return f"{source} {combo} workers={workers} seed={seed}"
