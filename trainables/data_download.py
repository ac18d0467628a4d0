"""torchvision's datasets by name, read from the files torchvision downloads, in its layout.

A folder a user filled with torchvision (or by hand, on a machine without network) is read as
is; a missing dataset is downloaded once per node into `data_dir`, under a file lock, so trials
starting together do not download it twice. The files are read natively (pickle, IDX, .mat):
no torchvision import, whose CUDA-built wheels do not load beside a CPU build of torch.
"""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from trainables.errors import InputError
from trainables.storage import locked

# name -> (folder under data_dir, files that must be there, archive URLs)
DATASETS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "CIFAR10": (
        "cifar-10-batches-py",
        ("data_batch_1", "test_batch", "batches.meta"),
        ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    ),
    "CIFAR100": (
        "cifar-100-python",
        ("train", "test", "meta"),
        ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
    ),
    "MNIST": (
        "MNIST/raw",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte"),
        tuple(f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}.gz" for f in (
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte")),
    ),
    "FashionMNIST": (
        "FashionMNIST/raw",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte"),
        tuple(f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}.gz" for f in (
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte")),
    ),
    "SVHN": (
        ".",
        ("train_32x32.mat", "test_32x32.mat"),
        ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
         "http://ufldl.stanford.edu/housenumbers/test_32x32.mat"),
    ),
}  # fmt: skip

# name -> (image shape, classes): known without the files (the driver costs networks on it)
SHAPES = {
    "CIFAR10": ((3, 32, 32), 10),
    "CIFAR100": ((3, 32, 32), 100),
    "MNIST": ((1, 28, 28), 10),
    "FashionMNIST": ((1, 28, 28), 10),
    "SVHN": ((3, 32, 32), 10),
}

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]


def load(name: str, data_dir: str, download: bool = True) -> Arrays:
    """(x_train, y_train, x_test, y_test, class names); images uint8 (N, C, H, W)."""
    root = Path(os.path.expanduser(data_dir))
    folder, needed, urls = DATASETS[name]
    with locked(root / f".{name}.lock"):  # one download per node; the others wait, then read
        if not _present(root / folder, needed):
            if not download:
                raise InputError(
                    f"trainable.options.dataset: {name} is not in {root / folder} (download: false)"
                )
            _download(name, root, urls, folder)
    return READERS[name](root / folder)


def _present(folder: Path, needed: tuple[str, ...]) -> bool:
    return all((folder / f).is_file() or (folder / f"{f}.gz").is_file() for f in needed)


def _download(name: str, root: Path, urls: tuple[str, ...], folder: str) -> None:
    target = root / folder
    target.mkdir(parents=True, exist_ok=True)
    for url in urls:
        filename = url.rsplit("/", 1)[1]
        try:
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                local = Path(tmp, filename)
                urllib.request.urlretrieve(url, local)  # noqa: S310  (fixed https/http URLs)
                if filename.endswith(".tar.gz"):
                    with tarfile.open(local) as archive:
                        archive.extractall(root, filter="data")
                else:
                    os.replace(local, target / filename)
        except (OSError, tarfile.TarError) as e:
            raise InputError(
                f"trainable.options.dataset: {name} could not be downloaded from {url} ({e}); "
                f"without network, put its files ({', '.join(DATASETS[name][1])}) in {target}"
            ) from None


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")  # noqa: S301  (the dataset's own format)


def _cifar(folder: Path, train: list[str], test: str, key: bytes, meta: str, names: bytes):
    def batch(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_unpickle(folder / f) for f in files]
        x = np.concatenate([np.asarray(p[b"data"], dtype=np.uint8) for p in parts])
        y = np.concatenate([np.asarray(p[key], dtype=np.int64) for p in parts])
        return x.reshape(-1, 3, 32, 32), y

    x_tr, y_tr = batch(train)
    x_te, y_te = batch([test])
    classes = [n.decode() for n in _unpickle(folder / meta)[names]]
    return x_tr, y_tr, x_te, y_te, classes


def _cifar10(folder: Path) -> Arrays:
    train = sorted(p.name for p in folder.glob("data_batch_*"))
    return _cifar(folder, train, "test_batch", b"labels", "batches.meta", b"label_names")


def _cifar100(folder: Path) -> Arrays:
    return _cifar(folder, ["train"], "test", b"fine_labels", "meta", b"fine_label_names")


def _idx(path: Path) -> np.ndarray:
    """The IDX format of (Fashion-)MNIST: big-endian dims after a magic number."""
    opener = gzip.open if not path.is_file() else open
    with opener(path if path.is_file() else Path(f"{path}.gz"), "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _mnist(folder: Path) -> Arrays:
    x_tr, y_tr = _idx(folder / "train-images-idx3-ubyte"), _idx(folder / "train-labels-idx1-ubyte")
    x_te, y_te = _idx(folder / "t10k-images-idx3-ubyte"), _idx(folder / "t10k-labels-idx1-ubyte")
    classes = [str(i) for i in range(int(y_tr.max()) + 1)]
    return x_tr[:, None], y_tr.astype(np.int64), x_te[:, None], y_te.astype(np.int64), classes


def _svhn(folder: Path) -> Arrays:
    from scipy.io import loadmat

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        mat = loadmat(folder / name)
        y = mat["y"].astype(np.int64).ravel() % 10  # the digit 0 is labelled 10
        return np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1)), y

    x_tr, y_tr = split("train_32x32.mat")
    x_te, y_te = split("test_32x32.mat")
    return x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)]


READERS = {
    "CIFAR10": _cifar10,
    "CIFAR100": _cifar100,
    "MNIST": _mnist,
    "FashionMNIST": _mnist,
    "SVHN": _svhn,
}
