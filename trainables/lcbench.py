"""LCBench learning curves from the YAHPO Gym surrogate (../shared/data/lcbench/, see its README).

Seven MLP hyperparameters on 34 OpenML tasks; the surrogate answers validation accuracy (percent)
and cumulative training seconds per epoch. Following its README: epochs 2..51 are used (epoch 1
is the untrained network, 52 repeats 51), so a curve has 50 epochs; times are made
non-decreasing (the surrogate does not force it); raw values go in, the graph scales them.
Needs onnxruntime: `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import csv
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from search_spaces.base import Arch
from search_spaces.language import Float, Int, Space
from trainables.curves import Curve, CurveError, CurveSource, data_path

INPUTS = ("batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units",
          "max_dropout")  # fmt: skip
FIRST_EPOCH, LAST_EPOCH = 2, 51
REPORTED_TASKS = (3945, 7593, 34539, 126025, 146212, 167104, 168330, 189909)


def lcbench_space() -> Space:
    """The surrogate's configuration space (its config_space.json), in nasorch's language."""
    return Space(
        {
            "batch_size": Int(16, 512, log=True),
            "learning_rate": Float(1e-4, 0.1, log=True),
            "momentum": Float(0.1, 0.99),
            "weight_decay": Float(1e-5, 0.1),
            "num_layers": Int(1, 5),
            "max_units": Int(64, 1024, log=True),
            "max_dropout": Float(0.0, 1.0),
        }
    )


class LCBenchCurves(CurveSource):
    metric, mode = "val_accuracy", "max"
    max_epochs = LAST_EPOCH - FIRST_EPOCH + 1

    def __init__(self, task: int | str, folder: str | Path | None = None, cache: int = 20_000):
        folder = Path(folder or data_path("lcbench"))
        try:
            import onnxruntime as ort
        except ImportError:
            raise CurveError(
                'the LCBench source needs onnxruntime: pip install -e ".[bench]"'
            ) from None
        if not (folder / "model.onnx").is_file():
            raise CurveError(f"LCBench surrogate not found: {folder / 'model.onnx'}")
        codes = json.loads((folder / "encoding.json").read_text())["OpenML_task_id"]
        tasks = json.loads((folder / "spec.json").read_text())["tasks"]
        if str(task) not in tasks:
            raise CurveError(f"LCBench task {task!r} is not one of {', '.join(tasks)}")
        self.task, self.name = str(task), f"lcbench-{task}"
        self.code = codes[self.task]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # many simulations run side by side, one per core
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.space = lcbench_space()
        self.best, self.worst = _task_range(folder, self.task)
        self._cache: OrderedDict[str, Curve] = OrderedDict()
        self._cache_size = cache

    def curve(self, arch: Arch) -> Curve:
        key = self.space.key(arch)
        hit = self._cache.get(key)
        if hit is None:
            hit = self.curves([arch])[0]
            self._cache[key] = hit
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return hit

    def curves(self, archs: list[Arch]) -> list[Curve]:
        """Many curves in one call of the network (85,000 rows a second on 2 cores)."""
        epochs = np.arange(FIRST_EPOCH, LAST_EPOCH + 1, dtype=np.float32)
        n = len(epochs)
        x = np.empty((len(archs) * n, 8), dtype=np.float32)
        for i, arch in enumerate(archs):
            block = x[i * n : (i + 1) * n]
            block[:, 0] = epochs
            block[:, 1:] = [float(arch[k]) for k in INPUTS]
        codes = np.full((len(x), 1), self.code, dtype=np.int32)
        out = self.session.run(None, {"x_cat": codes, "x_cont": x})[0]
        curves = []
        for i in range(len(archs)):
            rows = out[i * n : (i + 1) * n]
            times = np.maximum.accumulate(rows[:, 0].astype(float))
            curves.append(Curve(rows[:, 1].astype(float), times))
        return curves


def _task_range(folder: Path, task: str) -> tuple[float, float]:
    """The best and worst validation accuracy YAHPO measured for the task (500k configurations,
    any epoch: reference/instance_target_statistics_lcbench.csv)."""
    found: dict[str, float] = {}
    with open(folder / "reference" / "instance_target_statistics_lcbench.csv") as f:
        for row in csv.DictReader(f):
            if row["instance"] == task and row["metric"] == "val_accuracy":
                found[row["statistic"]] = float(row["value"])
    if "max" not in found or "min" not in found:
        raise CurveError(f"LCBench task {task}: no val_accuracy range in the reference statistics")
    return found["max"], found["min"]
