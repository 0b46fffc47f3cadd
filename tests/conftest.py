"""Fixtures shared by the unit tests: the project's own params.yaml, as data to copy and mutate."""

import copy
from pathlib import Path

import pytest
import yaml

PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"
SMALL_EPOCHS = 5


# `make test` runs two xdist workers that take whole modules (`-n 2 --dist loadfile`), in collection
# order. The modules that run real pipelines come first, longest first (pytest --durations,
# 2026-12-03), so that the two workers end together instead of one finishing a long module alone.
LONGEST_FIRST = ["test_remote.py", "test_tracking.py", "test_pipeline.py", "test_sweep_pipeline.py",
                 "test_validate.py", "test_browser.py", "test_server.py", "test_datasets.py", "test_run.py",
                 "test_robustness.py", "test_features.py", "test_evolution.py", "test_training.py"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module keeps its order


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: runs the real pipeline (`-m 'not integration'` skips it)")


@pytest.fixture(scope="session")
def _params_yaml() -> dict:
    """params.yaml parsed once per session; read-only (tests get deep copies below)."""
    return yaml.safe_load(PARAMS_YAML.read_text())


@pytest.fixture
def params_dict(_params_yaml) -> dict:
    """A fresh deep copy of params.yaml as a plain dict: mutate it freely."""
    return copy.deepcopy(_params_yaml)


@pytest.fixture
def small_params(params_dict) -> dict:
    """params.yaml as a plain dict with every experiment's epochs set to SMALL_EPOCHS."""
    for experiment in params_dict["experiments"].values():
        experiment["epochs"] = SMALL_EPOCHS
    return params_dict
