"""Datasets that ship with scikit-learn, split once with a fixed seed and standardised.

Every trial of a search sees the same train/validation split, so their metrics are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

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

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@lru_cache(maxsize=8)
def load(name: str = "digits", layout: str = "flat", val_fraction: float = 0.2) -> Split:
    """`layout`: "flat" (N, F), "image" (N, 1, 8, 8) or "sequence" (N, 8, 8): rows as time steps."""
    if name not in LOADERS:
        raise ValueError(f"dataset {name!r} is not one of {', '.join(LOADERS)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
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
