"""The runs `nasorch bench` and `nasorch bench --warm-from` share: one job given to every run,
and every searcher and seed run in processes."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def job_of(args: argparse.Namespace, space_options: dict[str, Any], **more: Any) -> dict[str, Any]:
    """What every run of bench and bench --warm-from is given (a dict: it crosses processes):
    the table's columns, the mode, the space and the budget, and `more`."""
    return {
        "arch_column": args.arch_column,
        "metric_column": args.metric_column,
        "mode": args.mode,
        "space": args.space,
        "space_options": space_options,
        "budget": args.budget,
        **more,
    }


def run_grid(
    fn: Callable[[dict[str, Any], str, int], dict[str, Any]],
    job: dict[str, Any],
    searchers: list[str],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], Path, str]:
    """`fn(job, searcher, seed)` for every searcher and seed (`--seeds`) in `--workers`
    processes, in order (bench's and bench --warm-from's runs alike); returns the runs, the
    output folder (made) and a line saying how many runs took how long on how many processes."""
    from orchestrator.simulation.setup import in_order

    tasks = [(job, name, seed) for name in searchers for seed in range(args.seeds)]
    workers = max(1, min(args.workers or os.cpu_count() or 1, len(tasks)))
    start = time.perf_counter()
    runs = in_order(fn, tasks, workers)
    ran = f"{len(tasks)} runs in {time.perf_counter() - start:.1f}s on {workers} process(es)"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return runs, out, ran
