"""The array-API / sklearnex configuration and the environment travel with the model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import array_api_strict as xps
import numpy as np
import pytest
import sklearn
from _repack import edit_manifest

import devpersist


def _strict_ridge():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X = xps.asarray(rng.random((40, 3)))
    y = xps.asarray(rng.random(40))
    with sklearn.config_context(array_api_dispatch=True):
        return Ridge(alpha=0.5, solver="svd").fit(X, y), X


def test_dump_records_the_whole_configuration():
    model, _ = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True, assume_finite=True, working_memory=77):
        meta = devpersist.info(devpersist.dumps(model))
    recorded = meta["config"]["sklearn"]
    assert recorded == {**sklearn.get_config(), "array_api_dispatch": True,
                        "assume_finite": True, "working_memory": 77}  # fmt: skip
    assert meta["config"]["scipy_array_api"] == os.environ.get("SCIPY_ARRAY_API")


def test_dump_outside_the_context_records_what_the_model_needs():
    model, X = _strict_ridge()  # fitted inside config_context, saved outside: the usual way
    expected = None
    with sklearn.config_context(array_api_dispatch=True):
        expected = model.predict(X)
    data = devpersist.dumps(model)
    config = devpersist.info(data)["config"]
    assert config["sklearn"]["array_api_dispatch"] is False  # in force at dump
    assert config["required"] == {
        "sklearn": {"array_api_dispatch": True},
        "estimators": {"Ridge": [["array_api_strict", "CPU_DEVICE"]]},
    }
    loaded = devpersist.loads(data)
    assert loaded.devpersist_config["array_api_dispatch"] is True
    with ThreadPoolExecutor(1) as pool:  # a server's worker thread
        got = pool.submit(loaded.predict, X).result()
    assert type(got) is type(expected) and got.device == expected.device
    assert got.dtype == expected.dtype and bool(xps.all(got == expected))


def test_numpy_and_array_free_models_require_nothing():
    from sklearn.linear_model import Ridge

    X = np.random.default_rng(0).random((20, 3))
    with sklearn.config_context(array_api_dispatch=True):  # in force, but not needed
        data = devpersist.dumps(Ridge().fit(X, X.sum(axis=1)))
        unfitted = devpersist.dumps(Ridge(alpha=3.0))
    for blob in (data, unfitted):
        config = devpersist.info(blob)["config"]
        assert config["required"] == {"sklearn": {}, "estimators": {}}
        assert config["sklearn"]["array_api_dispatch"] is True
        assert type(devpersist.loads(blob)) is Ridge  # nothing to restore: not wrapped


def test_sub_estimators_that_differ_are_recorded_each():
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import LinearRegression, Ridge

    rng = np.random.default_rng(2)
    X, y = rng.random((30, 3)), rng.random(30)
    strict = Ridge(solver="svd")
    with sklearn.config_context(array_api_dispatch=True):
        strict.fit(xps.asarray(X), xps.asarray(y))
    voting = VotingRegressor([("a", Ridge()), ("b", LinearRegression())]).fit(X, y)
    voting.estimators_[0] = strict  # one sub-estimator on array-api-strict, one numpy
    required = devpersist.info(devpersist.dumps(voting))["config"]["required"]
    assert required["sklearn"] == {"array_api_dispatch": True}
    assert required["estimators"] == {
        "VotingRegressor.estimators_[0]": [["array_api_strict", "CPU_DEVICE"]]
    }


def _mixed_ridge():
    import torch

    model, X = _strict_ridge()
    model.intercept_ = torch.asarray(float(model.intercept_))  # a second library
    return model


def test_mixed_namespaces_are_recorded_and_refused_where_unusable():
    model = _mixed_ridge()
    data = devpersist.dumps(model)
    meta = devpersist.info(data)
    places = {(a["path"], a["namespace"], a["device"]) for a in meta["arrays"]}
    assert ("Ridge.coef_", "array_api_strict", "CPU_DEVICE") in places
    assert ("Ridge.intercept_", "torch", "cpu") in places
    assert meta["mixed_placements"] == {
        "Ridge": [["array_api_strict", "CPU_DEVICE"], ["torch", "cpu"]]
    }
    for kwargs in ({}, {"device": "cpu"}, {"device": {"cpu": "cpu"}}):
        with pytest.raises(devpersist.DeviceError, match=r"Ridge\.coef_.*Ridge\.intercept_"):
            devpersist.loads(data, **kwargs)
    plain = devpersist.loads(data, namespace="numpy")  # one place again: usable
    assert isinstance(plain.coef_, np.ndarray) and isinstance(plain.intercept_, np.ndarray)


def test_methods_run_under_the_recorded_config_in_any_thread():
    model, X = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        data = devpersist.dumps(model)
        expected = model.predict(X)
    before = sklearn.get_config()
    loaded = devpersist.loads(data)
    assert sklearn.get_config() == before
    got = loaded.predict(X)  # no config_context here
    assert type(got) is type(expected) and bool(xps.all(got == expected))
    seen: list = []
    thread = threading.Thread(target=lambda: seen.append(loaded.predict(X)))
    thread.start()
    thread.join()
    with ThreadPoolExecutor(2) as pool:
        seen.append(pool.submit(loaded.predict, X).result())
    for result in seen:
        assert type(result) is type(expected) and bool(xps.all(result == expected))
    assert sklearn.get_config() == before
    assert loaded.devpersist_config["array_api_dispatch"] is True


def test_the_wrapped_estimator_is_still_the_estimator():
    from sklearn.linear_model import Ridge

    model, X = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        loaded = devpersist.loads(devpersist.dumps(model))
    assert isinstance(loaded, Ridge)
    raw = devpersist.unwrap(loaded)
    assert type(raw) is Ridge and loaded.__wrapped__ is raw
    assert loaded.alpha == 0.5 and loaded.get_params()["alpha"] == 0.5
    loaded.alpha = 2.0
    assert raw.alpha == 2.0
    assert loaded.fit(X, xps.asarray(np.arange(40.0))) is loaded  # fit keeps the wrapper
    assert "Ridge" in repr(loaded)


def test_restore_config_off_shows_why_it_matters():
    model, X = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        data = devpersist.dumps(model)
        expected = model.predict(X)
    raw = devpersist.loads(data, restore_config=False)
    assert type(raw).__name__ == "Ridge"
    assert type(expected) is type(X)
    # without dispatch scikit-learn converts the input to numpy: the silent change is
    # another array type (same values), which is what restoring the config prevents
    got = raw.predict(X)
    assert type(got) is np.ndarray
    assert np.array_equal(got, np.asarray(expected))


def test_pipelines_are_wrapped_too():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    X = xps.asarray(rng.random((30, 3)))
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's own 0/0 in fit
        pipe = make_pipeline(StandardScaler(), Ridge(solver="svd")).fit(
            X, xps.asarray(rng.random(30))
        )
        data, expected = devpersist.dumps(pipe), pipe.predict(X)
    got = devpersist.loads(data).predict(X)
    assert bool(xps.all(got == expected))


def test_numpy_conversion_needs_no_dispatch():
    model, X = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        data = devpersist.dumps(model)
        expected = np.asarray(model.predict(X))
    plain = devpersist.loads(data, namespace="numpy")
    assert type(plain).__name__ == "Ridge"  # nothing to restore: not wrapped
    assert isinstance(plain.coef_, np.ndarray)
    assert np.array_equal(plain.predict(np.asarray(X)), expected)


def test_config_context_for_objects_that_are_not_estimators():
    model, X = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        data = devpersist.dumps({"ridge": model})
        expected = model.predict(X)
    models = devpersist.loads(data)
    assert type(models["ridge"]).__name__ == "Ridge"  # dicts are not wrapped
    with devpersist.config_context(data):
        assert sklearn.get_config()["array_api_dispatch"] is True
        got = models["ridge"].predict(X)
    assert sklearn.get_config()["array_api_dispatch"] is False
    assert type(got) is type(expected) and got.dtype == expected.dtype
    assert bool(xps.all(got == expected))


def test_unknown_config_key_warns_and_loads():
    model, X = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        data = devpersist.dumps(model)
        expected = model.predict(X)
    newer = edit_manifest(data, lambda m: m["config"]["required"]["sklearn"].update(future_knob=3))
    with pytest.warns(devpersist.ConfigWarning, match="future_knob"):
        loaded = devpersist.loads(newer)
    got = loaded.predict(X)  # the known keys are still restored
    assert type(got) is type(expected) and bool(xps.all(got == expected))


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.__setitem__("config", [1, 2]),
        lambda m: m["config"]["sklearn"].update(assume_finite=[True]),
        lambda m: m["config"].update(extra={}),
        lambda m: m["config"].update(scipy_array_api=1),
        lambda m: m["config"].update(required=[]),
        lambda m: m["config"]["required"].update(extra={}),
        lambda m: m["config"]["required"]["sklearn"].update(array_api_dispatch=[1]),
        lambda m: m["config"]["required"]["estimators"].update(Ridge=[["torch"]]),
        lambda m: m["config"]["required"]["estimators"].update(Ridge="torch"),
    ],
    ids=[
        "not-object",
        "non-scalar",
        "unknown-section",
        "bad-env",
        "required-list",
        "required-extra",
        "required-non-scalar",
        "required-pair",
        "required-not-list",
    ],
)
def test_malformed_config_is_a_format_error(edit):
    model, _ = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        data = devpersist.dumps(model)
    with pytest.raises(devpersist.FormatError):
        devpersist.loads(edit_manifest(data, edit))


def _saved_with(version_edits: dict[str, str]) -> bytes:
    from sklearn.linear_model import LinearRegression

    data = devpersist.dumps(LinearRegression().fit(np.eye(3), np.arange(3.0)))

    def edit(m):
        for key, value in version_edits.items():
            if key == "python":
                m["environment"]["python"] = value
            else:
                m["environment"]["packages"][key] = value

    return edit_manifest(data, edit)


def test_version_policy_warns_once_with_a_table():
    import warnings

    data = _saved_with({"scikit-learn": "0.24.2", "numpy": "1.26.4", "python": "3.99.0"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        devpersist.loads(data)
    ours = [w for w in caught if issubclass(w.category, devpersist.VersionMismatchWarning)]
    assert len(ours) == 1 and len(caught) == 1  # scikit-learn's own warning folded in
    text = str(ours[0].message)
    for expected in (
        "scikit-learn",
        "0.24.2",
        sklearn.__version__,
        "numpy",
        "1.26.4",
        "python",
        "3.99.0",
    ):
        assert expected in text
    with pytest.raises(devpersist.VersionMismatchError):
        devpersist.loads(data, strict=True)


def test_compatible_versions_are_quiet():
    import warnings

    major, minor = sys.version_info[:2]
    data = _saved_with({"python": f"{major}.{max(minor - 1, 0)}.0"})  # older minor: fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        devpersist.loads(data, strict=True)


def test_environment_records_versions_and_devices():
    model, _ = _strict_ridge()
    env = devpersist.info(devpersist.dumps(model))["environment"]
    import scipy

    for package, module in (
        ("devpersist", devpersist),
        ("numpy", np),
        ("scipy", scipy),
        ("scikit-learn", sklearn),
        ("array-api-strict", xps),
    ):
        assert env["packages"][package] == module.__version__
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    # the device that held the arrays, named with a description of the hardware
    assert list(env["devices"]) == ["CPU_DEVICE"]
    assert isinstance(env["devices"]["CPU_DEVICE"], str) and env["devices"]["CPU_DEVICE"]


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_scipy_array_api_is_set_before_scipy_is_imported(tmp_path):
    model, X = _strict_ridge()
    with sklearn.config_context(array_api_dispatch=True):
        devpersist.dump(model, tmp_path / "m.dvp")
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    code = f"""
        import os, sys, warnings
        warnings.simplefilter("error")
        import devpersist, array_api_strict as xp
        assert "scipy" not in sys.modules
        m = devpersist.load({str(tmp_path / "m.dvp")!r})
        assert os.environ["SCIPY_ARRAY_API"] == "1"
        print(type(m.predict(xp.ones((2, 3), dtype=xp.float64))).__name__)
    """
    result = _run(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Array"
    late = _run(
        "import scipy\n" + textwrap.dedent(code).replace('assert "scipy" not in sys.modules', ""),
        env,
    )
    assert "SCIPY_ARRAY_API=1" in late.stderr and "before" in late.stderr
    # scipy reads it only at import: setting it now would fool scikit-learn's check only
    untouched = _run(
        f"""
        import os, warnings, sklearn, devpersist
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            devpersist.load({str(tmp_path / "m.dvp")!r})
        assert [w.category.__name__ for w in caught] == ["ConfigWarning"], caught
        assert "SCIPY_ARRAY_API" not in os.environ
        """,
        env,
    )
    assert untouched.returncode == 0, untouched.stderr


def test_sklearnex_offload_target_becomes_host_when_moved():
    sklearnex = pytest.importorskip("sklearnex")
    from sklearnex.linear_model import LinearRegression

    X = np.random.default_rng(0).random((20, 3))
    model = LinearRegression().fit(X, X.sum(axis=1))
    with sklearnex.config_context(target_offload="gpu:0", allow_fallback_to_host=True):
        data = devpersist.dumps(model)
    recorded = devpersist.info(data)["config"]["sklearnex"]
    assert recorded["target_offload"] == "gpu:0" and recorded["allow_fallback_to_host"] is True
    loaded = devpersist.loads(data, device="cpu")
    assert loaded.devpersist_config["target_offload"] == "auto"  # the host setting
    assert np.array_equal(loaded.predict(X), model.predict(X))
