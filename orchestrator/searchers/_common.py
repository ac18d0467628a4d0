"""Small helpers shared by the single-objective searchers."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Linear algebra on one BLAS thread inside the block.

    Why: a predictor's matrices (a few hundred rows) are too small for BLAS threads to pay, and
    OpenBLAS's threads spin while they wait: on two busy cores one GP fit of `guided` cost 672 ms
    of CPU with the default threads against 28 ms with one. The limit is undone on leaving, so a
    user's own code in the same process keeps its threads.
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield


_controller = None

MAX_BATCH = 32  # proposals one model fit serves at most


def batch_size(progress: int, batch_after: int | None) -> int:
    """Proposals one fit serves after `progress` results (`guided`, `rungs`, `fidelity`, the
    batched TPE): one up to `batch_after`, then one more per `batch_after`, at most MAX_BATCH."""
    if batch_after is None:
        return 1
    return min(MAX_BATCH, 1 + progress // batch_after)


def on_a_worker(fn: Callable[..., Any], *, cpus: float, gpus: float) -> Callable[..., Any]:
    """`fn` run in a Ray task when the runner has started Ray (with `gpus`, on a GPU, and not
    on the driver: the trials' slots are still free at a searcher's first ask), else `fn`
    itself. A strategy never imports Ray; the supernet searchers train their networks here."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return fn
    if gpus and ray.cluster_resources().get("GPU", 0) < gpus:
        print("nasorch: no GPU in the cluster; the supernet trains on CPU", file=sys.stderr)
        gpus = 0
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus)(fn)
    return lambda *args: ray.get(remote.remote(*args))
