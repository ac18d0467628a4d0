"""A user's own data: `trainable.options.dataset` as a mapping (format, path, ...).

Each format is read into arrays (features or images or token ids, integer labels); `split`
then holds out a seeded, stratified validation split (and a test split when no test file is
given) and normalises with the training split's statistics only. The test split is seen by no
trial: the search evaluates its best model on it once, at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trainables import storage
from trainables.errors import InputError

FORMATS = ("npz", "csv", "parquet", "image_folder", "torchvision", "text")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class DatasetSpec(BaseModel):
    """`trainable.options.dataset` when it is a mapping."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["npz", "csv", "parquet", "image_folder", "torchvision", "text"]
    path: str | None = Field(None, description="file (npz, csv, parquet, text) or folder")
    name: str | None = Field(None, description="torchvision: CIFAR10, CIFAR100, MNIST, ...")
    data_dir: str = Field("~/.cache/nasorch/data", description="torchvision's download folder")
    download: bool = True
    target: str = Field("label", description="label column (csv, parquet, text)")
    features: list[str] | None = Field(None, description="feature columns; default: the rest")
    text: str = Field("text", description="text column (format: text)")
    x_key: str = "x"
    y_key: str = "y"
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    test: str | float | None = Field(
        None, description="a file or folder in the same format, or a fraction held out"
    )
    image_size: int | None = Field(None, ge=4, description="image_folder: resized to this")
    tokenizer: str = Field("word", description="word, char, or hf:<name> (transformers)")
    max_length: int = Field(64, ge=1, le=100_000)
    vocab_size: int = Field(20_000, ge=4)
    seed: int = 0

    @model_validator(mode="after")
    def _needs(self) -> DatasetSpec:
        if self.format == "torchvision":
            from trainables.data_download import DATASETS

            if self.name not in DATASETS:
                raise ValueError(f"name: one of {', '.join(DATASETS)} for format torchvision")
        elif not self.path:
            raise ValueError(f"path: required for format {self.format}")
        if isinstance(self.test, float) and not 0.0 < self.test < 1.0:
            raise ValueError("test: a fraction between 0 and 1, or a path")
        return self


def read(spec: DatasetSpec, which: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """(x, y, class names) of the file or folder `which` (default: spec.path). Images are
    uint8 (N, C, H, W); tables float32 (N, F); text a list of strings (tokenised later)."""
    where = os.path.expanduser(which or spec.path or "")
    if storage.is_uri(where):  # on shared storage (s3://...): copied once per node, then read
        field = "test" if which else "path"
        where = storage.fetch(where, spec.data_dir, f"trainable.options.dataset.{field}")
    if spec.format != "torchvision" and not os.path.exists(where):
        raise InputError(f"trainable.options.dataset.path: {where} does not exist")
    try:
        if spec.format == "npz":
            return _npz(spec, where)
        if spec.format in ("csv", "parquet", "text"):
            return _table(spec, where)
        if spec.format == "image_folder":
            return _image_folder(spec, where)
    except InputError:
        raise
    except Exception as e:  # a file that is not what its format says: one line, not a trace
        raise InputError(
            f"trainable.options.dataset.path: {where} is not a readable {spec.format} file ({e})"
        ) from None
    raise InputError(f"trainable.options.dataset.format: {spec.format} has no reader here")


def labels_of(values: Any) -> tuple[np.ndarray, list]:
    """Integer labels 0..K-1 and the class names they stand for (sorted)."""
    values = np.asarray(values)
    names, y = np.unique(values, return_inverse=True)
    return y.astype(np.int64), [v.item() if hasattr(v, "item") else v for v in names]


def _npz(spec: DatasetSpec, path: str) -> tuple[np.ndarray, np.ndarray, list]:
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in (spec.x_key, spec.y_key) if k not in archive]
        if missing:
            raise InputError(
                f"trainable.options.dataset.x_key/y_key: {path} has no {', '.join(missing)} "
                f"(it holds {', '.join(archive.files)})"
            )
        x, raw = archive[spec.x_key], archive[spec.y_key]
    if len(x) != len(raw):
        raise InputError(
            f"trainable.options.dataset: {path} has {len(x)} inputs but {len(raw)} labels"
        )
    y, names = labels_of(raw)
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
    return x, y, names


def _table(spec: DatasetSpec, path: str) -> tuple[Any, np.ndarray, list]:
    import pandas as pd

    frame = pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path)
    if spec.target not in frame.columns:
        raise InputError(
            f"trainable.options.dataset.target: {path} has no column {spec.target!r} "
            f"(columns: {', '.join(map(str, frame.columns[:20]))})"
        )
    y, names = labels_of(frame[spec.target].astype(str) if frame[spec.target].dtype == object
                         else frame[spec.target])  # fmt: skip
    if spec.format == "text":
        if spec.text not in frame.columns:
            raise InputError(f"trainable.options.dataset.text: {path} has no column {spec.text!r}")
        return frame[spec.text].fillna("").astype(str).tolist(), y, names
    columns = spec.features or [c for c in frame.columns if c != spec.target]
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise InputError(
            f"trainable.options.dataset.features: {path} has no column {', '.join(unknown)}"
        )
    features = frame[columns]
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:  # categorical columns: one-hot, so any table works without preparing it
        features = pd.get_dummies(features, columns=text, dtype=np.float32)
    return features.to_numpy(dtype=np.float32, na_value=np.nan), y, names


def _image_folder(spec: DatasetSpec, root: str) -> tuple[np.ndarray, np.ndarray, list]:
    """torchvision's ImageFolder layout: root/<class>/<image>; RGB, resized to one size."""
    from PIL import Image

    classes = sorted(p.name for p in Path(root).iterdir() if p.is_dir())
    files = [
        (f, label)
        for label, name in enumerate(classes)
        for f in sorted(Path(root, name).rglob("*"))
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise InputError(f"trainable.options.dataset.path: {root} has no images in root/<class>/")
    size = spec.image_size
    images = []
    for f, _ in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if size is None:
                size = min(im.size)
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            images.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
    return np.stack(images), np.array([lab for _, lab in files], dtype=np.int64), classes
