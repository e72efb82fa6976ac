"""Every sklearnex array-API estimator fitted on dpnp, saved as users save, served elsewhere.

Each estimator that sklearnex tags ``onedal_array_api`` (``_sycl_cases``) is fitted on
dpnp arrays on the SYCL CPU device inside ``config_context(array_api_dispatch=True)`` and
dumped *outside* the context. Each file is then loaded in fresh serving processes
(``_sycl_serve.py``: scikit-learn imported first, outputs computed from a worker thread),
one process per load mode, every file in it:

- ``default``: where it was saved; ``host``: ``device="cpu"``, the host SYCL device;
  ``mapped``: a device mapping to the same device by another selector. These run with
  ``SCIPY_ARRAY_API=1`` set before Python starts, as docs/config.md requires for
  array-API dispatch; outputs must match the ones before saving bit for bit, with the
  same type, dtype, shape, SYCL device and USM type.
- ``numpy``: ``namespace="numpy"`` where dpnp and dpctl cannot be imported (and
  ``SCIPY_ARRAY_API`` is not set); ``no_sycl``: a host where dpctl finds no SYCL device
  at all (the OpenCL variables removed), loaded with the defaults: one fallback warning,
  numpy arrays; ``no_sycl_cpu``: the same host, ``device="cpu"``. Host kernels round
  differently from the SYCL device's, so values are
  compared to a tolerance.

The first use of each kernel on the OpenCL CPU device compiles it (JIT): fitting the
estimators here takes most of the suite's time, each serving process a few seconds.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _repack import edit_manifest
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


def _names() -> list[str]:
    """The estimators to parametrize with (one placeholder, which skips, where the SYCL
    stack is not installed: nothing is imported for it then)."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("dpnp", "dpctl", "sklearnex")):
        return ["(no SYCL stack)"]
    return list(array_api_estimators())


#: mode: its load options
MODES = {
    "default": {},
    "host": {"device": "cpu"},
    "mapped": {"device": {"opencl:cpu:0": "opencl:cpu"}},
    "numpy": {"namespace": "numpy"},
    "no_sycl": {},
    "no_sycl_cpu": {"device": "cpu"},
}
#: The serving processes: (modes, input library, dpnp blocked, SYCL device present).
PROCESSES = {
    "sycl": (("default", "host", "mapped"), "dpnp", False, True),
    "blocked": (("numpy",), "numpy", True, True),
    "no-sycl": (("no_sycl", "no_sycl_cpu"), "numpy", False, False),
}


@pytest.fixture(scope="module")
def fitted(sklearnex_dpc: Any, tmp_path_factory: Any) -> dict[str, Any]:
    """Fit every estimator on dpnp, record its outputs, dump it outside the context."""
    import dpnp

    sklearnex = sklearnex_dpc
    folder = tmp_path_factory.mktemp("dpnp-models")
    X, reg, clf = data()
    np.save(folder / "X.npy", X)
    Xd = dpnp.asarray(X)
    cases: dict[str, Any] = {}
    for name, cls in array_api_estimators().items():
        est = cls()
        y = dpnp.asarray(target_for(est, reg, clf))
        with sklearnex.config_context(array_api_dispatch=True), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # solver notices
            est.fit(Xd, y)
            expected = outputs(est, Xd)
        try:
            pickle.dumps(est)
            pickled = True
        except Exception:
            pickled = False
        devpersist.dump(est, folder / f"{name}.dvp")  # outside the context, as users do
        arrays = devpersist.info(folder / f"{name}.dvp")["arrays"]
        holds_dpnp = any(a["namespace"] == "dpnp" for a in arrays)
        cases[name] = {
            "expected": {k: (describe(v), host_values(v)) for k, v in expected.items()},
            "pickled": pickled,
            "holds_dpnp": holds_dpnp,
            "file": str(folder / f"{name}.dvp"),
        }
    return {"folder": folder, "cases": cases}


_served: dict[str, Any] = {}


def served(fitted: dict[str, Any], mode: str) -> tuple[dict[str, Any], Any]:
    """The results of ``mode`` and the folder of their values; each serving process
    runs once per module, for all its modes."""
    process = next(p for p, spec in PROCESSES.items() if mode in spec[0])
    if process not in _served:
        modes, library, block, keep_sycl = PROCESSES[process]
        files = {name: case["file"] for name, case in fitted["cases"].items()}
        loads = {m: MODES[m] for m in modes}
        _served[process] = serve(fitted["folder"], process, files, loads, library, block, keep_sycl)
    report = _served[process]
    return report, report["results"][mode]


def test_the_list_comes_from_sklearnex_tags(sklearnex_dpc):
    """Generated, not hand-picked: the list is exactly the classes sklearnex tags."""
    names = array_api_estimators()
    assert len(names) >= 20, sorted(names)
    from sklearn.utils import get_tags

    assert all(get_tags(cls()).onedal_array_api for cls in names.values())
    assert {"KMeans", "LinearRegression", "PCA", "RandomForestClassifier"} <= set(names)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name", _names())
def test_served(fitted, mode, name):
    case = fitted["cases"].get(name)
    if case is None:
        pytest.skip(f"{name} is not an array-API estimator of this sklearnex")
    report, results = served(fitted, mode)
    got = results[name]
    assert "error" not in got, got["error"]
    assert got["outputs"].keys() == case["expected"].keys()
    values = np.load(report["dir"] / f"{mode}-{name}.npz")
    on_device = mode in PROCESSES["sycl"][0]
    fallback = [w for w in got["warnings"] if w[0] == "DeviceFallbackWarning"]
    assert [w for w in got["warnings"] if w[0] != "DeviceFallbackWarning"] == []
    if mode == "no_sycl" and case["holds_dpnp"]:  # the saved device is missing
        assert len(fallback) == 1 and "opencl:cpu:0" in fallback[0][1], got["warnings"]
    elif mode == "no_sycl_cpu" and case["holds_dpnp"]:  # dpnp has no host device here
        assert len(fallback) == 1 and "device='cpu'" in fallback[0][1], got["warnings"]
    else:
        assert fallback == []
    for key, (want, want_values) in case["expected"].items():
        have = got["outputs"][key]
        if on_device:  # the same placement: identical in every respect
            assert have == want, key
            assert values[key].tobytes() == want_values.tobytes(), key
        else:  # numpy arrays on the host
            assert have["type"] == "numpy.ndarray" and have["device"] is None, key
            assert have["shape"] == want["shape"] and have["dtype"] == want["dtype"], key
            np.testing.assert_allclose(values[key], want_values, rtol=1e-6, atol=1e-9, err_msg=key)
    if mode == "numpy":
        assert report["modules"] == []  # dpnp and dpctl were never imported


def test_pickle_fails_exactly_on_the_models_that_hold_dpnp_arrays(fitted):
    """The baseline of docs/comparison.md: pickle saves only the models holding no dpnp
    array; devpersist saves all of them (the fixture dumped every one)."""
    cases = fitted["cases"]
    assert all(Path(c["file"]).stat().st_size > 0 for c in cases.values())
    assert {n for n, c in cases.items() if c["pickled"]} == {
        n for n, c in cases.items() if not c["holds_dpnp"]
    }


def _elsewhere(data: bytes) -> bytes:
    """The file as if its dpnp arrays had been saved on a GPU that is not here."""

    def edit(manifest: dict[str, Any]) -> None:
        for entry in manifest["arrays"]:
            if entry["namespace"] == "dpnp":
                entry["device"] = "level_zero:gpu:0"

    return edit_manifest(data, edit)


def test_a_model_saved_on_a_missing_sycl_device_follows_the_placement_rules(fitted, monkeypatch):
    """KMeans (arrays and oneDAL's converter) saved on a GPU this host lacks: the host
    SYCL device with one warning, or a DeviceError before anything is built."""
    import dpnp

    case = fitted["cases"]["KMeans"]
    data = _elsewhere(Path(case["file"]).read_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = devpersist.loads(data)
    assert [w.category.__name__ for w in caught] == ["DeviceFallbackWarning"]
    assert "level_zero:gpu:0" in str(caught[0].message)
    X = dpnp.asarray(np.load(fitted["folder"] / "X.npy"))
    got = outputs(model, X)
    for key, (want, want_values) in case["expected"].items():
        assert describe(got[key]) == want, key
        assert host_values(got[key]).tobytes() == want_values.tobytes(), key

    def built(*args: Any) -> Any:
        raise AssertionError("something was built before the placement was refused")

    monkeypatch.setattr(devpersist._load, "load_graph", built)
    with pytest.raises(devpersist.DeviceError, match="level_zero:gpu:0"):
        devpersist.loads(data, fallback="raise")


def test_kmeans_converter_is_rebuilt_for_where_its_arrays_go(fitted):
    """oneDAL's dpnp converter closure (a SyclQueue and the dpnp module) comes back as
    oneDAL's own dpnp converter on the saved device, and as its numpy converter with
    ``namespace="numpy"``."""
    import dpnp

    file = fitted["cases"]["KMeans"]["file"]
    model = devpersist.unwrap(devpersist.load(file))
    convert = model._onedal_estimator._input_type
    assert convert.__qualname__ == "return_type_constructor.<locals>.<lambda>"
    cells = dict(zip(convert.__code__.co_freevars, convert.__closure__))
    assert cells["xp"].cell_contents is dpnp
    assert cells["device"].cell_contents.sycl_device == model.cluster_centers_.sycl_device
    plain = devpersist.unwrap(devpersist.load(file, namespace="numpy"))
    from onedal.datatypes._data_conversion import return_type_constructor

    assert plain._onedal_estimator._input_type is return_type_constructor(np.empty(0))


def test_a_server_that_did_not_set_scipy_array_api(fitted):
    """A server that imported scikit-learn (so scipy) without ``SCIPY_ARRAY_API=1``
    cannot run array-API dispatch, which the dpnp models need: scipy reads the variable
    only at import, and devpersist does not set it late (docs/config.md). Each such model
    loads with one ConfigWarning that gives the fix, and calling its methods raises
    scikit-learn's own explanation; the one model without dpnp arrays just works."""
    files = {name: case["file"] for name, case in fitted["cases"].items()}
    report = serve(
        fitted["folder"], "late-scipy", files, {"late": {}}, "dpnp", scipy_array_api=False
    )
    for name, case in fitted["cases"].items():
        got = report["results"]["late"][name]
        if not case["holds_dpnp"]:
            assert "error" not in got and got["warnings"] == [], (name, got)
            continue
        assert [w[0] for w in got["warnings"]] == ["ConfigWarning"], (name, got)
        assert "SCIPY_ARRAY_API=1" in got["warnings"][0][1]
        if any(not key.startswith("attr:") for key in case["expected"]):  # it has methods
            assert got["error"].startswith("RuntimeError: "), (name, got)
            assert "SCIPY_ARRAY_API" in got["error"]
