import sys
import types
from pathlib import Path

import pytest

from search_spaces.nb201 import NB201Space, parse_arch
from trainables import TRAINABLES
from trainables.errors import InputError
from trainables.tabular import Table, TableError, default_table_path, tabular

REPO = Path(__file__).resolve().parent.parent
TABLE = default_table_path()  # $NASORCH_DATA/nb201_cifar10.csv, else ../shared/data
BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


def test_the_shared_table_is_there_and_is_the_default():
    # CI always has the table: a missing one is a failure, not a skip.
    assert Path(TABLE).is_file(), f"NB201 table missing at {TABLE}"
    assert Path(default_table_path()).resolve() == Path(TABLE).resolve()


def test_load_and_lookup():
    table = Table.load(TABLE)
    assert len(table) == 15625
    assert table.lookup(BEST) == pytest.approx(94.3733)
    assert table.best("max") == pytest.approx(94.3733)
    assert Table.load(TABLE) is table  # cached: read once


def test_relative_path_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(Table.load("../shared/data/nb201_cifar10.csv")) == 15625  # relative to project


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_any_csv_with_the_two_columns(tmp_path):
    path = _write(tmp_path, f"arch,err,other\n{BEST},5.5,x\n")
    table = Table.load(path, metric_column="err")
    assert table.lookup(BEST) == 5.5 and table.best("min") == 5.5


@pytest.mark.parametrize(
    "text, kwargs, fragment",
    [
        (None, {}, "not found"),
        ("arch,acc\nx,1\n", {}, "no column 'test_accuracy'"),
        ("cell,test_accuracy\nx,1\n", {}, "no column 'arch'"),
        ("arch,test_accuracy\n", {}, "no rows"),
        ("arch,test_accuracy\nx,1\ny,abc\n", {}, "line 3: 'test_accuracy' is not a number"),
        ("arch,test_accuracy\nx,1\n,2\n", {}, "line 3: empty"),
        ("arch,test_accuracy\nx,1\nx,2\n", {}, "line 3: architecture 'x' appears twice"),
    ],
)
def test_clear_errors(tmp_path, text, kwargs, fragment):
    path = str(tmp_path / "missing.csv") if text is None else _write(tmp_path, text)
    with pytest.raises(TableError, match=fragment) as info:
        Table.load(path, **kwargs)
    assert isinstance(info.value, InputError) and "\n" not in str(info.value)


def test_unknown_architecture(tmp_path):
    table = Table.load(_write(tmp_path, "arch,test_accuracy\nx,1\n"))
    with pytest.raises(TableError, match="not in table t.csv"):
        table.lookup(BEST)


def test_trainable_reports_metric_and_objectives(monkeypatch):
    reported = []
    fake_tune = types.SimpleNamespace(report=lambda metrics, **kw: reported.append(metrics))
    monkeypatch.setitem(sys.modules, "ray.tune", fake_tune)
    monkeypatch.setattr(
        sys.modules.get("ray") or types.ModuleType("ray"), "tune", fake_tune, raising=False
    )
    assert TRAINABLES["tabular"] is tabular
    tabular(
        {
            "arch": parse_arch(BEST),
            "search_space": {"name": "nb201", "options": {}},
            "trainable_options": {"table": TABLE, "metric": "accuracy"},
            "seed": 0,
        }
    )
    costs = NB201Space().objectives(parse_arch(BEST))
    assert reported == [{**costs, "accuracy": pytest.approx(94.3733)}]


def test_trainable_options_are_validated():
    with pytest.raises(ValueError, match="tabel"):
        tabular.Options(tabel="x.csv")
