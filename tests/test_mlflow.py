"""The MLflow flavor, against a real local tracking store (file backend under tmp_path)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import devpersist


@pytest.fixture
def mlflow(tmp_path, monkeypatch):
    import warnings

    mlflow = pytest.importorskip("mlflow")
    with warnings.catch_warnings():  # MLflow's own import-time warnings (type hints)
        warnings.simplefilter("ignore")
        import mlflow.pyfunc
    # MLflow 3 keeps the file store behind this opt-in; SQLite needs SQLAlchemy, which
    # mlflow-skinny does not bring
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    yield mlflow
    if mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def fitted():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1
    return make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(X, y), X


def test_log_model_then_pyfunc_predict(mlflow, fitted, tmp_path):
    import devpersist.mlflow as dmlflow

    model, X = fitted
    with mlflow.start_run():
        logged = dmlflow.log_model(model, "model", metadata={"owner": "ml-team"})
    served = mlflow.pyfunc.load_model(logged.model_uri)
    out = served.predict(X)
    expected = model.predict(X)
    assert type(out) is type(expected) and out.dtype == expected.dtype
    assert out.tobytes() == expected.tobytes()

    local = mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=str(tmp_path / "dl"))
    names = sorted(os.listdir(local))
    assert "model.dvp" in names and "MLmodel" in names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".cloudpickle"))]
    assert devpersist.verify(os.path.join(local, "model.dvp"))["untrusted"] == []
    assert devpersist.info(os.path.join(local, "model.dvp"))["metadata"] == {"owner": "ml-team"}

    # the recorded environment feeds the requirements, pinned
    import sklearn

    with open(os.path.join(local, "requirements.txt")) as f:
        reqs = f.read().split()
    assert f"scikit-learn=={sklearn.__version__}" in reqs
    assert f"numpy=={np.__version__}" in reqs and f"devpersist=={devpersist.__version__}" in reqs


def test_load_model_with_load_options(mlflow, fitted, tmp_path):
    import devpersist.mlflow as dmlflow

    model, X = fitted
    dmlflow.save_model(model, tmp_path / "saved")
    back = dmlflow.load_model(str(tmp_path / "saved"), namespace="numpy", device="cpu")
    assert back.predict(X).tobytes() == model.predict(X).tobytes()
    with pytest.raises(FileExistsError):
        dmlflow.save_model(model, tmp_path / "saved")
    served = mlflow.pyfunc.load_model(str(tmp_path / "saved"), model_config={"namespace": "numpy"})
    assert served.predict(X).tobytes() == model.predict(X).tobytes()
    with pytest.raises(ValueError, match="model_config"):
        dmlflow._load_pyfunc(str(tmp_path / "saved" / "model.dvp"), {"bogus": 1})


def test_load_model_applies_the_allowlist(mlflow, tmp_path, monkeypatch):
    import devpersist.mlflow as dmlflow

    (tmp_path / "issue14_mlflow_custom.py").write_text(
        "class Model:\n    def predict(self, X):\n        return X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import issue14_mlflow_custom

    with pytest.warns(devpersist.UntrustedTypeWarning, match="issue14_mlflow_custom.Model"):
        dmlflow.save_model(issue14_mlflow_custom.Model(), tmp_path / "custom")
    with pytest.raises(devpersist.UntrustedTypeError):
        dmlflow.load_model(str(tmp_path / "custom"))
    loaded = dmlflow.load_model(str(tmp_path / "custom"), trusted=["issue14_mlflow_custom.Model"])
    assert type(loaded).__name__ == "Model"
    # pyfunc serving: the same allowlist, and load options through model_config
    with pytest.raises(devpersist.UntrustedTypeError):
        mlflow.pyfunc.load_model(str(tmp_path / "custom"))
    served = mlflow.pyfunc.load_model(
        str(tmp_path / "custom"), model_config={"trusted": ["issue14_mlflow_custom.Model"]}
    )
    X = np.arange(6.0).reshape(3, 2)
    assert served.predict(X).tobytes() == X.tobytes()


def test_core_does_not_import_mlflow():
    import subprocess
    import sys

    code = "import devpersist, sys; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
