"""The data a trial trains on: a shipped scikit-learn dataset by name, or a user's own data
(`dataset` as a mapping, see trainables/data_files.py), split once with a fixed seed.

Every trial of a search sees the same train/validation split, so their metrics are comparable;
the test split (user data only) is seen by no trial. Statistics for normalising come from the
training split alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from trainables.errors import InputError

LOADERS = {
    "digits": "load_digits",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
}
LAYOUTS = ("flat", "image", "sequence")


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    vocab_size: int = 0  # > 0: inputs are token ids, which the trainable embeds first
    image: bool = False  # (N, C, H, W) images: augmentation applies

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load(dataset: Any = "digits", layout: str = "flat", val_fraction: float = 0.2) -> Split:
    """`dataset`: a shipped name, or a mapping (a user's data). `layout`: what the search
    space takes: "flat" (N, F), "image" (N, C, H, W) or "sequence" (N, T, F)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if isinstance(dataset, str):
        return _shipped(dataset, layout, val_fraction)
    from trainables.data_files import DatasetSpec

    spec = DatasetSpec(**dataset) if isinstance(dataset, dict) else dataset
    return _user_data(spec.model_dump_json(), layout)


def known_spec(dataset: Any, layout: str) -> tuple[tuple[int, ...], int] | None:
    """(input shape, classes) when they are known without reading the data (torchvision's
    datasets: the driver need not download CIFAR-10 to cost networks); else None."""
    from trainables.data_download import SHAPES
    from trainables.data_files import DatasetSpec

    spec = DatasetSpec(**dataset) if isinstance(dataset, dict) else dataset
    if not isinstance(spec, DatasetSpec) or spec.format != "torchvision":
        return None
    (c, h, w), classes = SHAPES[spec.name]
    shape = {"image": (c, h, w), "flat": (c * h * w,), "sequence": (h, c * w)}[layout]
    return shape, classes


@lru_cache(maxsize=8)
def _shipped(name: str, layout: str, val_fraction: float) -> Split:
    if name not in LOADERS:
        raise ValueError(f"dataset {name!r} is not one of {', '.join(LOADERS)}")
    if layout != "flat" and name != "digits":
        raise ValueError(f"dataset {name!r} has no {layout} layout (only digits is an 8x8 image)")
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    x, y = getattr(sklearn.datasets, LOADERS[name])(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=val_fraction, random_state=0, stratify=y
    )
    # Pixels that never vary in training keep scale 1, or a rare stroke there would explode.
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    std[std < 1e-6] = 1.0
    x_tr, x_va = (x_tr - mean) / std, (x_va - mean) / std
    if layout != "flat":
        shape = (1, 8, 8) if layout == "image" else (8, 8)
        x_tr, x_va = x_tr.reshape(-1, *shape), x_va.reshape(-1, *shape)
    return Split(
        x_tr.astype(np.float32),
        y_tr.astype(np.int64),
        x_va.astype(np.float32),
        y_va.astype(np.int64),
        int(y.max()) + 1,
    )


@lru_cache(maxsize=4)  # one copy per worker process, whatever number of trials it runs
def _user_data(key: str, layout: str) -> Split:
    from trainables import data_download, data_files

    spec = data_files.DatasetSpec(**json.loads(key))
    if spec.format == "torchvision":
        x, y, x_te, y_te, names = data_download.load(spec.name, spec.data_dir, spec.download)
    else:
        x, y, names = data_files.read(spec)
        x_te = y_te = None
        if isinstance(spec.test, str):
            x_te, y_te_raw, test_names = data_files.read(spec, spec.test)
            y_te = _relabel(y_te_raw, test_names, names)
    if x_te is None:  # a fraction of the data held out (default 0.1)
        fraction = spec.test if isinstance(spec.test, float) else 0.1
        x, x_te, y, y_te = _stratified(x, y, fraction, spec.seed)
    x_tr, x_va, y_tr, y_va = _stratified(x, y, spec.val_fraction, spec.seed + 1)
    num_classes = max(len(names), int(y.max()) + 1)
    if spec.format == "text":
        if layout != "sequence":
            raise InputError(
                "trainable.options.dataset: text needs a sequence space (recurrent, "
                f"transformer), not {layout}"
            )
        from trainables.text import Tokenizer

        tok = Tokenizer(spec.tokenizer, spec.vocab_size, spec.max_length).fit(x_tr)
        arrays = [tok.encode(part) for part in (x_tr, x_va, x_te)]
        return Split(arrays[0], y_tr, arrays[1], y_va, num_classes, arrays[2], y_te, tok.vocab_size)
    x_tr, x_va, x_te = _normalised(np.asarray(x_tr), np.asarray(x_va), np.asarray(x_te))
    image = x_tr.ndim == 4
    x_tr, x_va, x_te = (_in_layout(part, layout) for part in (x_tr, x_va, x_te))
    return Split(x_tr, y_tr, x_va, y_va, num_classes, x_te, y_te, image=image and layout == "image")


def _relabel(y: np.ndarray, names: list, reference: list) -> np.ndarray:
    """A test file's labels in the training file's numbering (class names decide)."""
    index = {name: i for i, name in enumerate(reference)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise InputError(
            f"trainable.options.dataset.test: classes not in the training data: {unknown[:5]}"
        )
    return np.array([index[names[i]] for i in y], dtype=np.int64)


def _stratified(x: Any, y: np.ndarray, fraction: float, seed: int) -> tuple:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None  # a class of one cannot be split
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=stratify)


def _normalised(x_tr: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """float32 with the training split's mean and std: per channel for images (uint8 scaled to
    [0, 1] first), per feature for tables (missing values take the feature's mean)."""
    if x_tr.ndim == 3:  # grayscale (N, H, W): one channel
        x_tr, others = x_tr[:, None], tuple(o[:, None] for o in others)
    scale = 255.0 if x_tr.dtype == np.uint8 else 1.0
    axes = (0, 2, 3) if x_tr.ndim == 4 else (0,)
    train = x_tr.astype(np.float32) / scale
    mean = np.nanmean(train, axis=axes, keepdims=True)
    std = np.nanstd(train, axis=axes, keepdims=True)
    mean, std = np.nan_to_num(mean), np.where(np.nan_to_num(std) < 1e-6, 1.0, std)
    out = []
    for part in (x_tr, *others):
        part = part.astype(np.float32) / scale
        part = np.where(np.isnan(part), mean, part) if x_tr.ndim == 2 else part
        out.append(((part - mean) / std).astype(np.float32))
    return out


def _in_layout(x: np.ndarray, layout: str) -> np.ndarray:
    if x.ndim == 2:  # a table
        if layout != "flat":
            raise InputError(
                f"trainable.options.dataset: a table has no {layout} layout; use a flat space (mlp)"
            )
        return x
    if x.ndim != 4:
        raise InputError(
            f"trainable.options.dataset: inputs of shape {x.shape[1:]} are no table nor images"
        )
    if layout == "flat":
        return x.reshape(len(x), -1)
    if layout == "sequence":  # rows as time steps, channels side by side
        return np.ascontiguousarray(x.transpose(0, 2, 1, 3).reshape(len(x), x.shape[2], -1))
    return x
