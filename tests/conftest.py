"""Fixtures shared by the unit tests: the project's own params.yaml, as data to copy and mutate."""

import copy
from pathlib import Path

import pytest
import yaml

PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"
SMALL_EPOCHS = 5


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
