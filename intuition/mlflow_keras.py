"""The MLflow flavour of this project's models: MLflow's Keras flavour, plus this package's code.

Why: a model that sees Playground features holds a custom Keras layer (models.PlaygroundFeatures),
and Keras finds a custom class only if its module was imported in the loading process (it imports
nothing but Keras' own modules, by design). MLflow's Keras 3 flavour (`mlflow.keras`) has no
`custom_objects` or `code_paths` (only the tf.keras flavour, `mlflow.tensorflow`, has), so
`mlflow.pyfunc.load_model` in a fresh Python would fail with "Could not locate class
'PlaygroundFeatures'". So the logged model is saved by `mlflow.keras.save_model` as usual (flavour
`keras`, the `.keras` file, signature, requirements), and then:
- this package is copied into the model's `code/` directory, which `mlflow.pyfunc.load_model` puts
  first on `sys.path` (the pyfunc `code` key, as `code_paths` sets it for other flavours);
- the pyfunc loader is this module: importing it registers the layer, then MLflow's own Keras
  loader (`mlflow.keras._load_pyfunc`, the loader-module contract) loads the model in safe mode.
`mlflow.keras.load_model` still works in a process that has imported `intuition.models` (or passes
`custom_objects={"intuition>PlaygroundFeatures": PlaygroundFeatures}`).

Used as a flavour module: `mlflow.models.Model.log(..., flavor=intuition.mlflow_keras, model=...)`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow.keras
from mlflow import pyfunc
from mlflow.models.model import MLMODEL_FILE_NAME

import intuition.models  # noqa: F401  registers PlaygroundFeatures with Keras

CODE_DIR = "code"
PACKAGE = Path(__file__).resolve().parent


def save_model(model, path, mlflow_model, **kwargs) -> None:
    mlflow.keras.save_model(model, path, mlflow_model=mlflow_model, **kwargs)
    shutil.copytree(PACKAGE, Path(path) / CODE_DIR / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    mlflow_model.flavors[pyfunc.FLAVOR_NAME].update({pyfunc.MAIN: __name__, pyfunc.CODE: CODE_DIR})
    mlflow_model.save(str(Path(path) / MLMODEL_FILE_NAME))


def _load_pyfunc(path):
    """MLflow's pyfunc entry point (the MLmodel's `loader_module`)."""
    return mlflow.keras._load_pyfunc(path)
