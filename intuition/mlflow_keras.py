"""The MLflow flavour of this project's models: MLflow's Keras flavour, written from the `.keras` file
that train@ saved, plus this package's code.

Why not `mlflow.keras.save_model`: it takes a loaded Keras model, and importing Keras (with
TensorFlow) costs evaluate@ 2.6 s of its ~11 s (measured), only to write the same file back. So
`save_model` here writes what MLflow's Keras 3 flavour writes (MLmodel with the `keras` flavour,
`data/model.keras`, `data/keras_module.txt`, conda.yaml, python_env.yaml, requirements.txt) from the
file, without importing Keras; tests/test_tracking.py checks it against `mlflow.keras.save_model`.

Why this package's code: a model that sees Playground features holds a custom Keras layer
(models.PlaygroundFeatures), and Keras finds a custom class only if its module was imported in the
loading process. MLflow's Keras 3 flavour has no `custom_objects` or `code_paths`, so
`mlflow.pyfunc.load_model` in a fresh Python would fail with "Could not locate class
'PlaygroundFeatures'". So:
- this package is copied into the model's `code/` directory, which `mlflow.pyfunc.load_model` puts
  first on `sys.path` (the pyfunc `code` key, as `code_paths` sets it for other flavours);
- the pyfunc loader is this module: `_load_pyfunc` registers the layer, then calls MLflow's own
  Keras loader (`mlflow.keras._load_pyfunc`, the loader-module contract), which loads in safe mode.
`mlflow.keras.load_model` works too in a process that has imported `intuition.models` (or passes
`custom_objects={"intuition>PlaygroundFeatures": PlaygroundFeatures}`).

Used as a flavour module: `mlflow.models.Model.log(..., flavor=intuition.mlflow_keras, model=<.keras path>)`.
"""

from __future__ import annotations

import os
import shutil
from importlib.metadata import version
from pathlib import Path

import yaml
from mlflow import pyfunc
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.utils.environment import (
    _CONDA_ENV_FILE_NAME,
    _PYTHON_ENV_FILE_NAME,
    _REQUIREMENTS_FILE_NAME,
    _process_pip_requirements,
    _PythonEnv,
)
from mlflow.utils.file_utils import get_total_file_size

FLAVOR = "keras"  # mlflow.keras.FLAVOR_NAME, without importing Keras
DATA_DIR = "data"
CODE_DIR = "code"
PACKAGE = Path(__file__).resolve().parent


def save_model(model, path, mlflow_model, signature, pip_requirements) -> None:
    """`model`: the path of a `.keras` file. Writes the MLflow model directory `path`."""
    path = Path(path)
    (path / DATA_DIR).mkdir(parents=True)
    shutil.copyfile(model, path / DATA_DIR / "model.keras")
    (path / DATA_DIR / "keras_module.txt").write_text("keras")
    shutil.copytree(PACKAGE, path / CODE_DIR / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))

    mlflow_model.signature = signature
    # Keras' own rule for its backend (keras.json aside): KERAS_BACKEND, else TensorFlow.
    mlflow_model.add_flavor(FLAVOR, data=DATA_DIR, keras_version=version("keras"),
                            keras_backend=os.environ.get("KERAS_BACKEND", "tensorflow"), save_exported_model=False)
    pyfunc.add_to_model(mlflow_model, loader_module=__name__, code=CODE_DIR,
                        conda_env=_CONDA_ENV_FILE_NAME, python_env=_PYTHON_ENV_FILE_NAME)
    mlflow_model.model_size_bytes = get_total_file_size(str(path))
    mlflow_model.save(str(path / MLMODEL_FILE_NAME))

    conda_env, requirements, _ = _process_pip_requirements(None, pip_requirements, None)
    (path / _CONDA_ENV_FILE_NAME).write_text(yaml.safe_dump(conda_env, default_flow_style=False))
    (path / _REQUIREMENTS_FILE_NAME).write_text("\n".join(requirements))
    _PythonEnv.current().to_yaml(str(path / _PYTHON_ENV_FILE_NAME))


def _load_pyfunc(path):
    """MLflow's pyfunc entry point (the MLmodel's `loader_module`)."""
    import intuition.models  # noqa: F401  registers PlaygroundFeatures with Keras
    import mlflow.keras

    return mlflow.keras._load_pyfunc(path)
