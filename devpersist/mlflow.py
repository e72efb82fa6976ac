"""An MLflow flavor: log, register and serve models saved as devpersist files.

The MLflow model directory holds ``model.dvp`` (a devpersist file, never a pickle) and
the usual ``MLmodel``, ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml``. The
requirements come from the environment recorded in the file (the versions of
scikit-learn, numpy, torch... that saved it), pinned, plus devpersist and MLflow.

- :func:`save_model` / :func:`log_model` write it; :func:`load_model` reads it back with
  devpersist's load options (``device``, ``namespace``, ``trusted``...);
- ``mlflow.pyfunc.load_model(uri).predict(X)`` serves it: the pyfunc flavor's loader is
  this module, which loads the file safely (the allowlist applies) and calls the
  model's ``predict``. Load options go through ``model_config``, e.g.
  ``mlflow.pyfunc.load_model(uri, model_config={"namespace": "numpy"})``.

MLflow is imported only by this module, and only when one of its functions is called:
``pip install devpersist[mlflow]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ._api import dump, info, load
from ._exceptions import FormatError, MissingLibraryError
from ._version import __version__

FLAVOR_NAME = "devpersist"
MODEL_FILE = "model.dvp"
#: Load options that ``model_config`` may pass to the pyfunc loader, with their defaults.
PYFUNC_DEFAULTS: dict[str, Any] = {
    "device": None,
    "namespace": None,
    "trusted": None,
    "fallback": "host",
    "restore_config": True,
}


def _mlflow() -> Any:
    try:
        import mlflow
        import mlflow.pyfunc
        from mlflow.models import Model  # noqa: F401
    except ImportError as exc:
        raise MissingLibraryError(
            "devpersist.mlflow needs MLflow: pip install devpersist[mlflow] (or mlflow-skinny)"
        ) from exc
    return mlflow


def _mlflow_requirement() -> str:
    from importlib import metadata

    for dist in ("mlflow", "mlflow-skinny"):
        try:
            return f"{dist}=={metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "mlflow"  # pragma: no cover - imported, so installed one way or another


def requirements(model_path: str) -> list[str]:
    """Pinned pip requirements from the environment recorded in the devpersist file."""
    packages = dict(info(model_path).get("environment", {}).get("packages", {}))
    packages.setdefault("devpersist", __version__)
    pins = [f"{name}=={version}" for name, version in sorted(packages.items())]
    return [*pins, _mlflow_requirement()]


def _write_environment(path: str, pip: list[str], python: str) -> None:
    with open(os.path.join(path, "requirements.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in pip))
    with open(os.path.join(path, "python_env.yaml"), "w", encoding="utf-8") as f:
        f.write(
            f"python: {python}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
        )
    with open(os.path.join(path, "conda.yaml"), "w", encoding="utf-8") as f:
        f.write(
            "channels:\n- conda-forge\ndependencies:\n"
            f"- python={python}\n- pip\n- pip:\n"
            + "".join(f"  - {line}\n" for line in pip)
            + "name: mlflow-env\n"
        )


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    compress: Any = None,
    precision: str | None = None,
    metadata: dict[str, Any] | None = None,
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
) -> None:
    """Save ``model`` as an MLflow model directory at ``path`` (which must not exist).

    Parameters
    ----------
    model : object
        What :func:`devpersist.dump` saves (a fitted estimator, usually).
    path : str or os.PathLike
        The directory to create.
    compress, precision, metadata
        As for :func:`devpersist.dump`; ``metadata`` is also MLflow's model metadata.
    mlflow_model : mlflow.models.Model, optional
        The model configuration to add the flavors to (:func:`log_model` passes it).
    signature, input_example
        As for MLflow's own flavors.
    pip_requirements : iterable of str, optional
        Replace the requirements derived from the file's recorded environment.
    extra_pip_requirements : iterable of str, optional
        Add to them.
    """
    _mlflow()
    import mlflow.pyfunc
    from mlflow.models import Model

    path = os.fspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists: MLflow models go in a new directory")
    os.makedirs(path)
    if mlflow_model is None:
        mlflow_model = Model()
    if metadata is None:  # log_model's metadata= reaches MLflow's Model, not this function
        metadata = getattr(mlflow_model, "metadata", None)
    data = os.path.join(path, MODEL_FILE)
    dump(model, data, compress=compress, precision=precision, metadata=metadata)
    mlflow_model.metadata = metadata
    if signature is not None:
        mlflow_model.signature = signature
    if input_example is not None:
        from mlflow.models.utils import _save_example

        _save_example(mlflow_model, input_example, path)
    recorded = info(data)
    pip = list(pip_requirements) if pip_requirements is not None else requirements(data)
    pip += list(extra_pip_requirements or ())
    python = recorded.get("environment", {}).get("python", "3")
    _write_environment(path, pip, python)
    mlflow.pyfunc.add_to_model(
        mlflow_model,
        loader_module="devpersist.mlflow",
        data=MODEL_FILE,
        conda_env="conda.yaml",
        python_env="python_env.yaml",
        # MLflow lets load_model(model_config=...) override only the keys saved here
        model_config=dict(PYFUNC_DEFAULTS),
    )
    mlflow_model.add_flavor(
        FLAVOR_NAME,
        data=MODEL_FILE,
        devpersist_version=__version__,
        format_version=recorded["format_version"],
        object_type=recorded.get("object", {}).get("type", ""),
    )
    mlflow_model.save(os.path.join(path, "MLmodel"))


def log_model(
    model: Any,
    name: str = "model",
    *,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Log ``model`` to the active MLflow run (one is started if none is).

    ``kwargs`` are those of :func:`save_model`. Returns MLflow's ``ModelInfo``, whose
    ``model_uri`` :func:`load_model` and ``mlflow.pyfunc.load_model`` accept.
    """
    import inspect
    import sys

    _mlflow()
    from mlflow.models import Model

    # MLflow 3 names the logged model (``name=``); MLflow 2 takes an artifact path
    named = "name" in inspect.signature(Model.log).parameters
    return Model.log(
        None if named else name,
        sys.modules[__name__],
        registered_model_name=registered_model_name,
        model=model,
        **({"name": name} if named else {}),
        **kwargs,
    )


def _model_file(local: str) -> str:
    from mlflow.models import Model

    conf = Model.load(os.path.join(local, "MLmodel")).flavors.get(FLAVOR_NAME)
    if conf is None:
        raise FormatError(f"the MLflow model at {local} has no {FLAVOR_NAME!r} flavor")
    return os.path.join(local, conf.get("data", MODEL_FILE))


def load_model(
    model_uri: str,
    *,
    device: Any = None,
    namespace: str | None = None,
    trusted: Iterable[Any] | None = None,
    dst_path: str | None = None,
    **load_options: Any,
) -> Any:
    """Load a model logged with this flavor, with :func:`devpersist.load`'s options.

    Parameters
    ----------
    model_uri : str
        ``runs:/<run_id>/model``, ``models:/<name>/<version>``, a local path...
    device, namespace, trusted
        As for :func:`devpersist.load`.
    dst_path : str, optional
        Where to download the artifacts (default: a temporary directory).
    **load_options
        Other :func:`devpersist.load` options (``fallback``, ``strict``...).
    """
    mlflow = _mlflow()
    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst_path)
    return load(
        _model_file(local), device=device, namespace=namespace, trusted=trusted, **load_options
    )


class _PyFuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict`` calls the model's."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def get_raw_model(self) -> Any:
        return self.model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self.model.predict(data)


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _PyFuncModel:
    """MLflow's pyfunc loader: ``path`` is the devpersist file (or its directory)."""
    if os.path.isdir(path):
        path = _model_file(path)
    options = dict(model_config or {})
    unknown = set(options) - set(PYFUNC_DEFAULTS)
    if unknown:
        raise ValueError(
            f"model_config keys {sorted(unknown)} are not devpersist load options; "
            f"use {sorted(PYFUNC_DEFAULTS)}"
        )
    return _PyFuncModel(load(path, **options))
