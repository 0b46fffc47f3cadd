"""Atomic writes leave either the old file or the new one, and tables/datasets round-trip."""

import numpy as np
import pytest

from intuition.files import atomic_path, read_dataset, read_table, write_dataset, write_table


class Boom(Exception):
    pass


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_atomic_path_writes_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target and not tmp.exists()
        tmp.write_text("new")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_text() == "new"
    assert _siblings(target) == ["out.txt"]


@pytest.mark.parametrize("existing", [None, "old"])
def test_atomic_path_leaves_no_trace_when_the_block_raises(tmp_path, existing):
    target = tmp_path / "out.txt"
    if existing is not None:
        target.write_text(existing)
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise Boom
    assert _siblings(target) == ([] if existing is None else ["out.txt"])
    if existing is not None:
        assert target.read_text() == existing


def test_atomic_path_cleans_up_a_half_written_directory(tmp_path):
    target = tmp_path / "figures"
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "a.png").write_text("x")
            raise Boom
    assert _siblings(target) == []


def test_atomic_path_replaces_an_existing_directory(tmp_path):
    target = tmp_path / "figures"
    target.mkdir()
    (target / "stale.png").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "fresh.png").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["fresh.png"]
    assert (target / "fresh.png").read_text() == "new"
    assert _siblings(target) == ["figures"]


def test_atomic_path_keeps_the_suffix(tmp_path):
    """model.save() picks the format from the suffix, so the temporary path must keep '.keras'."""
    with atomic_path(tmp_path / "model.keras") as tmp:
        assert tmp.suffix == ".keras"
        tmp.write_text("x")


def test_write_table_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.column_stack([np.arange(1, 8), rng.normal(size=7) * 1e3, rng.random(7) * 1e-7])
    rows[2, 1], rows[3, 1], rows[4, 2] = np.nan, np.inf, -np.inf  # a diverged history has these
    columns = ["epoch", "loss", "val_loss"]
    path = tmp_path / "history.csv"
    write_table(path, columns, rows)
    table = read_table(path)
    assert list(table) == columns
    for i, name in enumerate(columns):
        np.testing.assert_array_equal(table[name], rows[:, i])  # exact, NaN == NaN
    assert path.read_text().splitlines()[1].startswith("1,")  # whole numbers are written as integers


def test_write_table_of_a_single_row(tmp_path):
    path = tmp_path / "t.csv"
    write_table(path, ["a", "b"], [[1.5, 2]])
    assert {k: v.tolist() for k, v in read_table(path).items()} == {"a": [1.5], "b": [2.0]}


@pytest.mark.filterwarnings("ignore:loadtxt:UserWarning")  # the no-data warning
def test_write_table_of_no_rows_round_trips(tmp_path):
    path = tmp_path / "t.csv"
    write_table(path, ["a", "b"], [])
    table = read_table(path)
    assert list(table) == ["a", "b"] and all(len(v) == 0 for v in table.values())


def test_write_dataset_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 2)) * 100, rng.integers(0, 3, size=50)
    path = tmp_path / "data" / "spiral" / "train.csv"
    write_dataset(path, X, y)
    X2, y2 = read_dataset(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert y2.dtype == np.int64
    assert path.read_text().splitlines()[0] == "x1,x2,y"


def test_read_dataset_of_a_missing_file_says_how_to_make_it(tmp_path):
    path = tmp_path / "data" / "linear" / "train.csv"
    with pytest.raises(FileNotFoundError) as info:
        read_dataset(path)
    assert str(path) in str(info.value) and "dvc repro" in str(info.value)
