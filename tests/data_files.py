"""Small datasets generated in each format nasorch reads, with a learnable signal: the class
decides which quarter of an image is bright, or which features are high, or which words appear.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ("cat", "dog", "ship")


def images(n: int = 60, size: int = 8, channels: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    x = rng.integers(0, 60, (n, channels, size, size)).astype(np.uint8)
    half = size // 2
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, :, r * half : (r + 1) * half, c * half : (c + 1) * half] += 180
    return x, y


def table(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    frame["a"] += 3 * (y == 0)
    frame["b"] += 3 * (y == 1)
    frame["colour"] = np.where(y == 2, "red", "blue")  # categorical: one-hot encoded
    frame.loc[3, "c"] = np.nan  # a missing value takes the feature's mean
    frame["label"] = [CLASSES[i] for i in y]
    return frame


def write_npz(folder: Path) -> Path:
    x, y = images()
    np.savez(folder / "data.npz", x=x, y=y)
    return folder / "data.npz"


def write_csv(folder: Path) -> Path:
    table().to_csv(folder / "table.csv", index=False)
    return folder / "table.csv"


def write_parquet(folder: Path) -> Path:
    table().to_parquet(folder / "table.parquet", index=False)
    return folder / "table.parquet"


def write_image_folder(folder: Path, n: int = 45) -> Path:
    from PIL import Image

    x, y = images(n, size=12)
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        target = folder / "pictures" / CLASSES[label]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(target / f"{i:03d}.png")
    return folder / "pictures"


def write_cifar10(data_dir: Path, n: int = 60) -> Path:
    """CIFAR-10's python batches, as torchvision downloads them (cifar-10-batches-py/)."""
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"class{i}" for i in range(10)]
    for name, seed in [("data_batch_1", 0), ("data_batch_2", 1), ("test_batch", 2)]:
        x, y = images(n, size=32, seed=seed)
        batch = {b"data": x.reshape(n, -1), b"labels": [int(v) for v in y]}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [n.encode() for n in names]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return data_dir


def write_mnist(data_dir: Path, n: int = 40) -> Path:
    """MNIST's gzipped IDX files in torchvision's MNIST/raw/."""
    folder = data_dir / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for prefix, seed in [("train", 0), ("t10k", 1)]:
        x, y = images(n, size=28, channels=1, seed=seed)
        head = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + x.tobytes()))
        head = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big")
        labels = y.astype(np.uint8).tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head + labels))
    return data_dir


def write_text(folder: Path, n: int = 90) -> Path:
    rng = np.random.default_rng(0)
    words = {0: "purr whiskers meow", 1: "bark fetch woof", 2: "sail harbour anchor"}
    filler = "the a of and to in is it".split()
    rows = []
    for i in range(n):
        label = i % 3
        noise = " ".join(rng.choice(filler, 4))
        rows.append({"text": f"{noise} {words[label]} {noise}", "label": CLASSES[label]})
    pd.DataFrame(rows).to_csv(folder / "reviews.csv", index=False)
    return folder / "reviews.csv"
