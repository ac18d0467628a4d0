"""The checks a GPU machine must pass, in a few minutes: one line per check, PASS or FAIL with
what was measured; the exit status is 1 when any check fails. Without CUDA it says it needs a
GPU and exits 0 (nothing to check).

- `torch.compile` on CUDA: a conv network compiled, one training step, the same output as eager;
- two short real searches through `orchestrator.run` (local Ray, MLflow on sqlite and Ray's
  storage in a temporary folder), the conv space on digits, two trials at `resources.gpu: 0.5`
  sharing the GPU: one with AMP bf16, `compile: true` and `channels_last`, one with AMP fp16
  and `channels_last`. For each: every trial completed with a finite loss and better than
  chance; every trial run's `nasorch.device` tag is cuda; the meter's `gpu_utilization` and
  `gpu_memory_gb` on every trial run (read back from MLflow); the parent run's
  `accelerator_hours_used` > 0; the two trials trained at the same time (their spans in Ray's
  result.json overlap);
- the trial-efficiency rows (benchmarks/trial_efficiency.py's GPU path, briefly): images/s of a
  trial at `gpu: 1` and `0.5`, AMP off and bf16, against a plain loop on the same GPU.

    python benchmarks/gpu_check.py [--epochs 2] [--images 3000]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CHANCE = 0.1  # digits has 10 classes
SEARCHES = {  # label -> the torch trainable's options under test
    "bf16+compile+channels_last": {"amp": "bf16", "compile": True, "channels_last": True},
    "fp16+channels_last": {"amp": "fp16", "channels_last": True},
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def guarded(name: str, fn: Callable[[], Iterable[Check]]) -> list[Check]:
    """The checks `fn` makes, or one FAIL naming `name` when it raises."""
    try:
        return list(fn())
    except Exception as e:  # noqa: BLE001 - a check that crashes is a failed check, not a stop
        return [Check(name, False, first_line(e))]


def exit_status(checks: list[Check]) -> int:
    return 0 if checks and all(c.ok for c in checks) else 1


# ---- one search's records, judged -------------------------------------------------------------
def overlap_seconds(spans: list[tuple[float, float]]) -> float:
    """How long every span ran at once (0 when they never all did)."""
    if not spans:
        return 0.0
    return max(0.0, min(end for _, end in spans) - max(start for start, _ in spans))


def judge_search(
    label: str, runs: list[dict[str, Any]], parent: dict[str, float], spans: list, trials: int
) -> list[Check]:
    """The checks of one search from its records: `runs`, one dict per trial run (status,
    device, gpu_utilization, gpu_memory_gb, val_accuracy, val_loss: what MLflow holds);
    `parent`, the parent run's metrics; `spans`, each trial's (start, end) in seconds."""
    from orchestrator.core import tags as T

    out = []
    done = [r for r in runs if r.get("status") == "completed"]
    accs = [r.get("val_accuracy") for r in done]
    losses = [r.get("val_loss") for r in done]
    finite = all(v is not None and math.isfinite(v) for v in losses)
    trained = (
        len(done) == trials == len(runs)
        and all(a is not None and a > CHANCE for a in accs)
        and finite
    )
    shown = ", ".join(f"{a:.3f}" if a is not None else "none" for a in accs)
    out.append(
        Check(
            f"{label}: trials trained",
            trained,
            f"{len(done)} of {trials} completed (runs: {len(runs)}), val_accuracy {shown or '-'} "
            f"(chance {CHANCE:g}), val_loss finite: {finite}",
        )
    )
    devices = [str(r.get("device", "")) for r in runs]
    out.append(
        Check(
            f"{label}: {T.DEVICE}",
            bool(devices) and all(d.startswith("cuda") for d in devices),
            "; ".join(devices) or "no trial run",
        )
    )
    util = [r.get("gpu_utilization") for r in runs]
    mem = [r.get("gpu_memory_gb") for r in runs]
    out.append(
        Check(
            f"{label}: meter",
            bool(runs)
            and all(u is not None and 0 <= u <= 100 for u in util)
            and all(m is not None and m > 0 for m in mem),
            f"gpu_utilization {util} %, gpu_memory_gb {mem}",
        )
    )
    hours = parent.get("accelerator_hours_used")
    out.append(
        Check(
            f"{label}: accelerator_hours_used",
            hours is not None and hours > 0,
            f"{hours} (reserved {parent.get('accelerator_hours_reserved')})",
        )
    )
    both = overlap_seconds(spans)
    out.append(
        Check(
            f"{label}: {trials} trials at gpu 0.5 at once",
            len(spans) == trials and both > 0,
            f"{len(spans)} trial spans, all running together for {both:.1f} s",
        )
    )
    return out


# ---- the GPU work -----------------------------------------------------------------------------
def check_compile() -> list[Check]:
    import torch

    from search_spaces import SEARCH_SPACES

    space = SEARCH_SPACES["conv"]()
    arch = {"stages": [{"channels": 16, "blocks": 1, "stride": 1, "pool": "max"}],
            "kernel": 3, "residual": False, "lr": 0.01, "batch_size": 32}  # fmt: skip
    torch.manual_seed(0)
    model = space.build_model(arch, (1, 8, 8), 10).cuda()
    x = torch.randn(32, 1, 8, 8, device="cuda")
    compiled = torch.compile(model)
    loss = compiled(x).float().logsumexp(1).mean()
    loss.backward()  # the compiled backward runs too
    with torch.no_grad():
        diff = (compiled(x) - model(x)).abs().max().item()
    ok = math.isfinite(loss.item()) and diff < 1e-3
    return [Check("torch.compile on cuda", ok, f"max |compiled - eager| {diff:.2e}")]


def search_config(label: str, options: dict[str, Any], root: str, epochs: int) -> dict:
    return {
        "name": f"gpu-check-{label}",
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": 2,
        "max_concurrent_trials": 2,
        "seed": 0,
        "dedupe": False,
        "search_space": {"name": "conv", "options": {"max_stages": 2, "max_blocks": 1,
                                                     "channels": [16, 32], "lr": [0.01, 0.03]}},
        "trainable": {"name": "torch", "options": {"dataset": "digits", "epochs": epochs,
                                                   **options}},
        "searcher": {"name": "random"},
        "scheduler": {"name": "fifo"},
        "resources": {"cpu": 1, "gpu": 0.5},
        "storage_path": f"{root}/ray",
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db"},
    }  # fmt: skip


def trial_spans(experiment_path: str) -> list[tuple[float, float]]:
    """Each trial's (start, end): its first report's timestamp less that epoch's seconds, and
    its last report's timestamp, from Ray's result.json."""
    spans = []
    for path in sorted(Path(experiment_path).glob("t*/result.json")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            first, last = rows[0], rows[-1]
            spans.append((first["timestamp"] - first["time_this_iter_s"], last["timestamp"]))
    return spans


def check_search(label: str, options: dict[str, Any], root: str, epochs: int) -> list[Check]:
    import mlflow

    import orchestrator
    from orchestrator.core import tags as T

    cfg = search_config(label, options, root, epochs)
    result = orchestrator.run(cfg, progress=False)
    client = mlflow.MlflowClient(result.tracking_uri)
    found = client.search_runs(
        [result.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    )
    runs = [
        {
            "status": r.data.tags.get(T.STATUS),
            "device": r.data.tags.get(T.DEVICE, ""),
            **{
                k: r.data.metrics.get(k)
                for k in ("gpu_utilization", "gpu_memory_gb", "val_accuracy", "val_loss")
            },
        }  # fmt: skip
        for r in found
        if r.data.tags.get(T.ROLE) == T.TRIAL
    ]
    parent = client.get_run(result.parent_run_id).data.metrics
    spans = trial_spans(result.experiment_path)
    return judge_search(label, runs, parent, spans, cfg["num_samples"])


def check_efficiency(root: str, images: int, epochs: int) -> list[Check]:
    import trial_efficiency as te

    folder = Path(root) / "efficiency"
    folder.mkdir()
    data = te.make_images(folder, images)
    split = te.load_split(data)
    rows = te.gpu_rows(data, folder, split, max(2, epochs), shares=(1.0, 0.5))
    ok = bool(rows) and all(r["rate"] > 0 and r["plain"] > 0 and r["timed"] > 0 for r in rows)
    lines = te.gpu_lines(rows, len(split.x_train))
    return [Check("trial efficiency rows", ok, " | ".join(line.strip() for line in lines))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="each trial's")
    parser.add_argument("--images", type=int, default=3000, help="the efficiency rows' data")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            f"gpu_check: needs a GPU (torch {torch.__version__} sees no CUDA device); "
            "nothing was checked"
        )
        return 0
    print(f"gpu_check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    checks: list[Check] = []

    def run(name: str, fn: Callable[[], Iterable[Check]]) -> None:
        for check in guarded(name, fn):
            checks.append(check)
            print(check.line(), flush=True)

    run("torch.compile on cuda", check_compile)
    with tempfile.TemporaryDirectory(prefix="nasorch-gpu-check-") as root:
        for label, options in SEARCHES.items():
            run(f"{label}: search", partial(check_search, label, options, root, args.epochs))
        run("trial efficiency rows", lambda: check_efficiency(root, args.images, args.epochs))
        import ray

        ray.shutdown()
    failed = [c.name for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed" + (
        f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return exit_status(checks)


if __name__ == "__main__":
    sys.exit(main())
