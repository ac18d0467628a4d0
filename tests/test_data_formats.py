"""A user's own data (trainables/datasets.py, data_files.py, data_download.py, text.py): each
format read from files generated here, split seeded and stratified, normalised from the
training split only, with a test split no trial sees; bad input is one line naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from tests import data_files as gen
from trainables import data_download, datasets, recipe
from trainables.data_files import DatasetSpec
from trainables.errors import InputError


def load(layout="flat", **spec):
    return datasets.load(DatasetSpec(**spec), layout)


def test_npz_images_in_every_layout(tmp_path):
    path = str(gen.write_npz(tmp_path))
    image = load("image", format="npz", path=path)
    assert image.x_train.shape[1:] == (3, 8, 8) and image.image
    assert len(image.x_train) + len(image.x_val) + len(image.x_test) == 60
    # per channel, from the training split: mean 0, std 1 there
    assert np.allclose(image.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    assert np.allclose(image.x_train.std(axis=(0, 2, 3)), 1, atol=1e-3)
    assert load("flat", format="npz", path=path).x_train.shape[1:] == (192,)
    assert load("sequence", format="npz", path=path).x_train.shape[1:] == (8, 24)


def test_the_split_is_seeded_stratified_and_disjoint(tmp_path):
    path = str(gen.write_csv(tmp_path))
    a = load(format="csv", path=path, val_fraction=0.2, test=0.2)
    b = load(format="csv", path=path, val_fraction=0.2, test=0.2)
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.y_test, b.y_test)
    for part in (a.y_train, a.y_val, a.y_test):  # every class in every part, in proportion
        assert set(np.bincount(part)) <= {min(np.bincount(part)), max(np.bincount(part))}
        assert np.bincount(part).min() > 0
    rows = {tuple(r) for r in np.round(a.x_train, 5)}
    assert not rows & {tuple(r) for r in np.round(a.x_test, 5)}
    other = load(format="csv", path=path, val_fraction=0.2, test=0.2, seed=1)
    assert not np.array_equal(a.y_test, other.y_test) or not np.array_equal(a.x_test, other.x_test)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_one_hot_text_columns_and_fill_gaps(tmp_path, fmt):
    path = str(gen.write_csv(tmp_path) if fmt == "csv" else gen.write_parquet(tmp_path))
    data = load(format=fmt, path=path)
    assert data.num_classes == 3 and data.x_train.shape[1] == 6  # a..d + colour one-hot
    assert not np.isnan(data.x_train).any() and not np.isnan(data.x_test).any()
    chosen = load(format=fmt, path=path, features=["a", "b"])
    assert chosen.x_train.shape[1] == 2


def test_a_test_file_keeps_the_training_files_class_numbers(tmp_path):
    frame = gen.table()
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame[frame.label != "cat"].to_csv(tmp_path / "test.csv", index=False)  # classes 1, 2 only
    data = load(format="csv", path=str(tmp_path / "train.csv"), test=str(tmp_path / "test.csv"))
    assert len(data.y_test) == 60 and set(data.y_test) == {1, 2}


def test_image_folder_resizes_to_one_size(tmp_path):
    root = str(gen.write_image_folder(tmp_path))
    data = load("image", format="image_folder", path=root, image_size=8)
    assert data.x_train.shape[1:] == (3, 8, 8) and data.num_classes == 3


def test_cifar10_in_torchvisions_layout_uses_its_test_batch(tmp_path):
    data_dir = str(gen.write_cifar10(tmp_path / "cache"))
    data = load("image", format="torchvision", name="CIFAR10", data_dir=data_dir, download=False)
    assert data.x_train.shape[1:] == (3, 32, 32) and data.num_classes == 10
    assert len(data.x_test) == 60 and len(data.x_train) + len(data.x_val) == 120


def test_mnist_idx_files(tmp_path):
    data_dir = str(gen.write_mnist(tmp_path / "cache"))
    data = load("image", format="torchvision", name="MNIST", data_dir=data_dir)
    assert data.x_train.shape[1:] == (1, 28, 28) and len(data.x_test) == 40


def test_no_network_says_which_folder_to_fill(tmp_path, monkeypatch):
    def offline(url, filename):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data_download.urllib.request, "urlretrieve", offline)
    with pytest.raises(InputError) as e:
        data_download.load("CIFAR10", str(tmp_path), download=True)
    message = str(e.value)
    assert "\n" not in message and "could not be downloaded" in message
    assert str(tmp_path / "cifar-10-batches-py") in message


def test_text_becomes_token_ids_from_the_training_vocabulary(tmp_path):
    path = str(gen.write_text(tmp_path))
    data = load("sequence", format="text", path=path, max_length=12)
    assert data.x_train.dtype == np.int64 and data.x_train.shape[1:] == (12,)
    assert 4 < data.vocab_size < 30 and data.x_test is not None
    chars = load("sequence", format="text", path=path, tokenizer="char", max_length=40)
    assert chars.vocab_size < 40
    with pytest.raises(InputError, match="sequence space"):
        load("flat", format="text", path=path)


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"format": "csv"}, "path"),
        ({"format": "torchvision", "name": "ImageNet"}, "name"),
        ({"format": "csv", "path": "nowhere.csv"}, "dataset.path"),
        ({"format": "csv", "path": "{table}", "target": "class"}, "dataset.target"),
        ({"format": "npz", "path": "{npz}", "x_key": "images"}, "dataset.x_key"),
        ({"format": "csv", "path": "{table}"}, None),
    ],
)
def test_bad_specs_are_one_line_naming_the_field(tmp_path, spec, field):
    files = {"table": gen.write_csv(tmp_path), "npz": gen.write_npz(tmp_path)}
    spec = {k: v.format(**files) if isinstance(v, str) else v for k, v in spec.items()}
    if field is None:
        load(**spec)
        return
    with pytest.raises((InputError, ValueError)) as e:
        load(**spec)
    assert field in str(e.value)


def test_table_in_an_image_space_is_refused(tmp_path):
    with pytest.raises(InputError, match="flat space"):
        load("image", format="csv", path=str(gen.write_csv(tmp_path)))


def test_learning_rate_schedules_over_the_whole_budget():
    cosine = [recipe.lr_factor(e, 10, "cosine", 0, 30, 0.1) for e in range(1, 11)]
    assert cosine[0] == 1.0 and cosine == sorted(cosine, reverse=True) and cosine[-1] < 0.03
    warm = [recipe.lr_factor(e, 10, "cosine", 2, 30, 0.1) for e in range(1, 4)]
    assert warm == [1 / 3, 2 / 3, 1.0]
    assert [recipe.lr_factor(e, 9, "step", 0, 3, 0.5) for e in (1, 3, 4, 7)] == [1, 1, 0.5, 0.25]
    assert recipe.lr_factor(5, 10, "constant", 0, 30, 0.1) == 1.0


def test_augmentation_crops_and_flips_reproducibly():
    import torch

    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    a = recipe.augment(x, torch.Generator().manual_seed(0), pad=1)
    b = recipe.augment(x, torch.Generator().manual_seed(0), pad=1)
    assert a.shape == x.shape and torch.equal(a, b)
    shifted = recipe.augment(x, torch.Generator().manual_seed(3), pad=1)
    assert not torch.equal(shifted, x) or not torch.equal(a, x)
