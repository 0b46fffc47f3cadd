"""Atomic writes leave either the old file or the new one; measured numbers are rounded, data is
kept exact; every output has one path; and quiet_stderr silences C-level writes to fd 2."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intuition import files
from intuition.files import (SIGNIFICANT_DIGITS, EvaluateOutputs, TrainOutputs, atomic_path, quiet_stderr, read_csv,
                             read_json, read_points, read_splits, rounded, write_csv, write_json, write_points)
from intuition.types import Points, Splits


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


def test_atomic_path_removes_what_a_killed_write_of_the_same_path_left(tmp_path):
    """SIGKILL runs no `finally`: the next write of that output removes the temporary siblings the
    killed one left (a file or a directory), and nothing else."""
    target = tmp_path / "seeds"
    (tmp_path / ".seeds.1u0l463p").mkdir()
    (tmp_path / ".seeds.1u0l463p" / "seed_0.keras").write_text("half-written")
    (tmp_path / ".seeds.x2b9k0qa").write_text("half-written")
    (tmp_path / ".gitignore").write_text("/seeds\n")
    (tmp_path / ".seedsextra.abcd1234").write_text("not a sibling of this output")
    with atomic_path(target) as tmp:
        tmp.mkdir()
    assert _siblings(target) == [".gitignore", ".seedsextra.abcd1234", "seeds"]


def test_atomic_path_keeps_the_suffix(tmp_path):
    """model.save() picks the format from the suffix, so the temporary path must keep '.keras'."""
    with atomic_path(tmp_path / "model.keras") as tmp:
        assert tmp.suffix == ".keras"
        tmp.write_text("x")


class Unprintable:
    """A cell that fails while the CSV is being written (after the temporary file was opened)."""

    def __str__(self):
        raise Boom

    __repr__ = __str__


@pytest.mark.parametrize("existing", [None, "old"])
def test_a_failing_write_csv_leaves_the_old_file_or_none(tmp_path, existing):
    target = tmp_path / "seeds.csv"
    if existing is not None:
        target.write_text(existing)
    with pytest.raises(Boom):
        write_csv(target, pd.DataFrame({"a": [1.5, 2.5, Unprintable()]}))
    assert _siblings(target) == ([] if existing is None else ["seeds.csv"])
    if existing is not None:
        assert target.read_text() == existing


def test_write_json_writes_what_could_not_be_measured_as_null(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"test": {"accuracy": math.nan, "loss": [math.inf, 0.5]}})
    assert json.loads(target.read_text()) == {"test": {"accuracy": None, "loss": [None, 0.5]}}


def test_write_json_writes_nothing_when_it_fails(tmp_path):
    target = tmp_path / "metrics.json"
    with pytest.raises(TypeError):
        write_json(target, {"test": object()})
    assert _siblings(target) == []


# ---------------------------------------------------------------------------------- rounding


def test_significant_digits_is_six():
    """Part of the contract of committed metrics files: changing it rewrites every number."""
    assert SIGNIFICANT_DIGITS == 6


def test_rounded_rounds_floats_in_nested_dicts_and_lists():
    tree = {"test": {"accuracy": {"mean": 0.912345678, "ci95": [0.1 + 0.2, 123456789.0]}},
            "seeds": (1 / 3, 2 / 3), "learned": True, "n": 7, "name": "relu", "none": None,
            "numpy": np.float64(2 / 3)}
    assert rounded(tree) == {"test": {"accuracy": {"mean": 0.912346, "ci95": [0.3, 123457000.0]}},
                             "seeds": [0.333333, 0.666667], "learned": True, "n": 7, "name": "relu",
                             "none": None, "numpy": 0.666667}
    assert rounded(-1.23456789e-7) == -1.23457e-7
    assert type(rounded(7)) is int and rounded(True) is True  # not turned into floats


def test_rounded_leaves_nan_and_inf_alone():
    result = rounded({"a": [math.nan, math.inf, -math.inf]})
    assert math.isnan(result["a"][0]) and result["a"][1:] == [math.inf, -math.inf]


def test_write_json_rounds(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"test": {"accuracy": 0.987654321, "seeds": [1 / 3]}, "seeds": 5})
    assert read_json(path) == {"test": {"accuracy": 0.987654, "seeds": [0.333333]}, "seeds": 5}
    assert path.read_text().endswith("}\n")


def test_write_csv_rounds_measured_numbers(tmp_path):
    rng = np.random.default_rng(0)
    loss = np.concatenate([rng.normal(size=5) * 1e3, rng.random(3) * 1e-7, [np.nan, np.inf, -np.inf]])
    frame = pd.DataFrame({"epoch": np.arange(len(loss)), "loss": loss, "learned": [True, False] * 5 + [True]})
    path = tmp_path / "history.csv"
    write_csv(path, frame)
    table = read_csv(path)
    assert list(table) == ["epoch", "loss", "learned"]
    np.testing.assert_array_equal(table["epoch"], frame["epoch"])  # integers stay integers
    assert table["epoch"].dtype == np.int64 and table["learned"].tolist() == frame["learned"].tolist()
    expected = [float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in loss]
    np.testing.assert_array_equal(table["loss"], expected)  # NaN == NaN, inf kept
    assert not np.array_equal(table["loss"][:8], loss[:8])  # ... and the rounding did happen


def test_write_csv_unrounded_is_exact(tmp_path):
    values = np.random.default_rng(1).normal(size=20) / 3
    path = tmp_path / "t.csv"
    write_csv(path, pd.DataFrame({"v": values}), rounded=False)
    np.testing.assert_array_equal(read_csv(path)["v"], values)


def test_write_csv_of_a_single_row_and_of_no_rows(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(path, pd.DataFrame({"a": [1.5], "b": [2]}))
    assert read_csv(path).to_dict("list") == {"a": [1.5], "b": [2]}
    write_csv(path, pd.DataFrame({"a": [], "b": []}))
    table = read_csv(path)
    assert list(table) == ["a", "b"] and len(table) == 0


# ---------------------------------------------------------------------------------- datasets on disk


def _random_points(seed: int, n: int = 200) -> Points:
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-8, 8, size=(n, 1))  # many magnitudes: every digit must survive
    return Points(rng.normal(size=(n, 2)) * scale, rng.integers(0, 3, size=n))


def test_write_points_round_trips_exactly(tmp_path):
    points = _random_points(1)
    path = tmp_path / "data" / "spiral" / "train.csv"
    write_points(path, points)
    back = read_points(path)
    np.testing.assert_array_equal(back.X, points.X)  # not rounded to SIGNIFICANT_DIGITS
    np.testing.assert_array_equal(back.y, points.y)
    assert back.X.dtype == np.float64 and back.y.dtype == np.int64
    assert path.read_text().splitlines()[0] == "x1,x2,y"


def test_read_splits_reads_train_and_test_of_a_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "DATA", tmp_path / "data")
    train, test = _random_points(2, 40), _random_points(3, 10)
    write_points(tmp_path / "data" / "bands" / "train.csv", train)
    write_points(tmp_path / "data" / "bands" / "test.csv", test)
    splits = read_splits("bands")
    assert isinstance(splits, Splits)
    for got, wrote in [(splits.train, train), (splits.test, test)]:
        np.testing.assert_array_equal(got.X, wrote.X)
        np.testing.assert_array_equal(got.y, wrote.y)


def test_read_csv_of_a_missing_file_says_how_to_make_it(tmp_path):
    path = tmp_path / "data" / "linear" / "train.csv"
    with pytest.raises(FileNotFoundError) as info:
        read_points(path)
    assert str(info.value) == f"{path}: missing; run `dvc repro` to make it"


# ---------------------------------------------------------------------------------- output paths


def test_train_and_evaluate_outputs_live_under_the_experiment_key():
    trained, evaluated = TrainOutputs("spiral_easy_relu_1x64"), EvaluateOutputs("spiral_easy_relu_1x64")
    assert trained.model(3) == Path("models/spiral_easy_relu_1x64/seeds/seed_3.keras")
    assert trained.history == Path("models/spiral_easy_relu_1x64/history.csv")
    assert trained.training == Path("models/spiral_easy_relu_1x64/training.json")
    assert evaluated.metrics == Path("results/spiral_easy_relu_1x64/metrics.json")
    assert evaluated.seeds == Path("results/spiral_easy_relu_1x64/seeds.csv")
    assert evaluated.figures == Path("results/spiral_easy_relu_1x64/figures")
    assert files.dataset_file("bands", "test") == Path("data/bands/test.csv")


# ---------------------------------------------------------------------------------- quiet_stderr

CHILD = [sys.executable, "-c", "import os; os.write(2, b'child-c-level')"]


def test_quiet_stderr_silences_fd_2_and_restores_it(capfd):
    os.write(2, b"before ")
    with quiet_stderr():
        os.write(2, b"hidden ")  # what a C++ library does: below Python's sys.stderr
        subprocess.run(CHILD, check=True)  # a child inherits the silenced fd 2
    os.write(2, b"after ")
    subprocess.run(CHILD, check=True)
    assert capfd.readouterr().err == "before after child-c-level"


def test_quiet_stderr_restores_fd_2_when_the_block_raises(capfd):
    with pytest.raises(Boom):
        with quiet_stderr():
            os.write(2, b"hidden")
            raise Boom
    os.write(2, b"after")
    assert capfd.readouterr().err == "after"


def test_quiet_stderr_disabled_hides_nothing(capfd):
    with quiet_stderr(enabled=False):
        os.write(2, b"shown")
    assert capfd.readouterr().err == "shown"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists open descriptors on Linux")
def test_quiet_stderr_does_not_leak_file_descriptors():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with quiet_stderr():
            pass
    assert len(os.listdir("/proc/self/fd")) == before
