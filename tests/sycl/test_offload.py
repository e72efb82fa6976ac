"""Models fitted with sklearnex ``target_offload`` on a SYCL device, and sklearnex's own
serialization example with dpnp on the SYCL CPU device in place of an XPU.

On the DPC++ build of sklearnex, ``target_offload="cpu"`` runs oneDAL's SYCL path on the
SYCL CPU device: it names a SYCL device, not the host. The setting is recorded at dump
(the fitted model itself keeps no trace of it) and restored on load where that device
exists; where it does not, the model runs on the host with the placement warning, or the
load fails with ``fallback="raise"``, before anything is built.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from _sycl_cases import (
    array_api_estimators,
    data,
    describe,
    host_values,
    outputs,
    serve,
    target_for,
)

import devpersist


@pytest.fixture(scope="module")
def offloaded(sklearnex_dpc: Any, tmp_path_factory: Any) -> dict[str, Any]:
    """Every array-API estimator that fits on numpy under ``target_offload="cpu"``,
    dumped inside the context (where the setting is in force)."""
    sklearnex = sklearnex_dpc
    folder = tmp_path_factory.mktemp("offloaded")
    X, reg, clf = data()
    np.save(folder / "X.npy", X)
    cases: dict[str, Any] = {}
    for name, cls in array_api_estimators().items():
        est = cls()
        with sklearnex.config_context(target_offload="cpu"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, target_for(est, reg, clf))
            expected = outputs(est, X)
            devpersist.dump(est, folder / f"{name}.dvp")
        cases[name] = {
            "expected": {k: (describe(v), host_values(v)) for k, v in expected.items()},
            "file": str(folder / f"{name}.dvp"),
        }
    return {"folder": folder, "cases": cases}


def _files(offloaded: dict[str, Any]) -> dict[str, str]:
    return {name: case["file"] for name, case in offloaded["cases"].items()}


def test_offload_target_is_recorded(offloaded):
    for case in offloaded["cases"].values():
        assert devpersist.info(case["file"])["config"]["sklearnex"]["target_offload"] == "cpu"


def test_offload_target_is_restored_where_the_device_exists(offloaded):
    report = serve(offloaded["folder"], "offload", _files(offloaded), {"default": {}}, "numpy")
    for name, case in offloaded["cases"].items():
        got = report["results"]["default"][name]
        assert "error" not in got, (name, got["error"])
        assert got["warnings"] == [], (name, got["warnings"])
        assert got["config"]["target_offload"] == "cpu", name
        values = np.load(report["dir"] / f"default-{name}.npz")
        for key, (want, want_values) in case["expected"].items():
            assert got["outputs"][key] == want, (name, key)
            assert values[key].tobytes() == want_values.tobytes(), (name, key)


def test_offload_target_that_is_not_here_follows_the_placement_rules(offloaded):
    """On a host without the SYCL device: the host with one warning, or, with
    ``fallback="raise"``, a DeviceError."""
    report = serve(
        offloaded["folder"],
        "offload-no-sycl",
        _files(offloaded),
        {"host": {}, "raise": {"fallback": "raise"}},
        "numpy",
        keep_sycl=False,
    )
    for name, case in offloaded["cases"].items():
        got = report["results"]["host"][name]
        assert "error" not in got, (name, got["error"])
        assert [w[0] for w in got["warnings"]] == ["DeviceFallbackWarning"], name
        assert "target_offload='cpu'" in got["warnings"][0][1]
        # sklearnex's defaults: nothing to restore, so the estimator is not even wrapped
        assert (got["config"] or {}).get("target_offload", "auto") == "auto", name
        values = np.load(report["dir"] / f"host-{name}.npz")
        for key, (want, want_values) in case["expected"].items():
            assert got["outputs"][key]["type"] == want["type"], (name, key)
            np.testing.assert_allclose(values[key], want_values, rtol=1e-6, atol=1e-9)
        refused = report["results"]["raise"][name]
        assert refused["error"].startswith("DeviceError: "), name
        assert "target_offload='cpu'" in refused["error"]


def test_sklearnex_serialization_example_on_the_sycl_cpu_device(sklearnex_dpc):
    """sklearnex's "Serialization of GPU models" example, with dpnp arrays on the SYCL
    CPU device in place of torch on an XPU, and devpersist in place of pickle (which
    cannot save it: dpnp arrays do not pickle)."""
    import dpnp
    from sklearn.datasets import make_regression
    from sklearnex import config_context
    from sklearnex.linear_model import LinearRegression

    X_np, y_np = make_regression(random_state=0)
    X = dpnp.asarray(X_np, dtype=dpnp.float32, device="opencl:cpu")
    y = dpnp.asarray(y_np, dtype=dpnp.float32, device="opencl:cpu")

    with config_context(array_api_dispatch=True):
        model = LinearRegression().fit(X, y)
        pred_fresh = model.predict(X)

    assert isinstance(pred_fresh, dpnp.ndarray)

    model_deserialized = devpersist.loads(devpersist.dumps(model))
    with config_context(array_api_dispatch=True):
        pred_deserialized = model_deserialized.predict(X)
    pred_unconfigured = model_deserialized.predict(X)  # the configuration came with it

    for pred in (pred_deserialized, pred_unconfigured):
        assert type(pred) is type(pred_fresh) and pred.dtype == pred_fresh.dtype
        assert pred.sycl_device == pred_fresh.sycl_device
        np.testing.assert_array_equal(dpnp.asnumpy(pred_fresh), dpnp.asnumpy(pred))


def test_offload_to_a_sycl_queue_is_recorded_as_its_device(sklearnex_dpc):
    """``target_offload`` may be a SyclQueue: it is recorded as its device's filter
    string, which names the device again in another process."""
    import dpctl
    from sklearnex.linear_model import LinearRegression

    X, reg, _ = data()
    queue = dpctl.SyclQueue("opencl:cpu")
    with sklearnex_dpc.config_context(target_offload=queue):
        model = LinearRegression().fit(X, reg)
        expected = model.predict(X)
        saved = devpersist.dumps(model)
    recorded = devpersist.info(saved)["config"]["sklearnex"]["target_offload"]
    assert recorded == queue.sycl_device.filter_string
    loaded = devpersist.loads(saved)
    assert loaded.devpersist_config["target_offload"] == recorded
    assert loaded.predict(X).tobytes() == expected.tobytes()
