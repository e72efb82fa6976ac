"""Fit on an accelerator, serve anywhere: the journey as users walk it (issue 10).

Every estimator that scikit-learn or sklearnex declares array-API capable (generated from
their tags by ``_journey.estimators()``), plus Pipeline, FeatureUnion and the searches,
is fitted on torch CPU tensors and on array-api-strict ``device1`` inside
``config_context(array_api_dispatch=True)``, then saved both inside and outside the
context (users save outside it). Each file is then loaded in a fresh serving process that
imports scikit-learn before devpersist and predicts from a worker thread:

- ``default``: where it was saved;
- ``host``: ``device="cpu"`` (torch ``cpu``, array-api-strict ``CPU_DEVICE``);
- ``mapped``: a device mapping (``{"device1": "device2"}``, torch ``{"cpu": "cpu"}``);
- ``numpy``: ``namespace="numpy"`` in a process where torch cannot be imported and
  ``SCIPY_ARRAY_API`` is not set.

Outputs are compared with those before saving: values bit for bit, output type,
namespace, device and dtype. For ``numpy`` the reference is scikit-learn's own
conversion (``move_estimator_to``) where it works, since numpy kernels round differently
from torch's. The device modes run with ``SCIPY_ARRAY_API=1`` in the server's
environment, which array-API dispatch needs before scipy is imported (docs/config.md);
a server without it is tested on its own below.

One serving process per (backend, load mode), each loading every file of its backend.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import devpersist

BACKENDS = ("torch", "array_api_strict")
MODES = ("default", "host", "mapped", "numpy")


def _expected_device(namespace: str, device: str, mode: str) -> str:
    from _journey import HOST, MAPPED

    if namespace == "numpy" or mode == "default":
        return device
    return HOST[namespace] if mode == "host" else MAPPED[namespace]


@pytest.fixture(scope="module")
def journey(tmp_path_factory: Any) -> dict[str, Any]:
    pytest.importorskip("torch")
    import _journey
    import array_api_strict  # noqa: F401  (a test requirement: a missing one fails here)
    import sklearn
    from sklearn.base import clone

    started = time.perf_counter()
    folder = tmp_path_factory.mktemp("journey")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecations met while generating instances
        estimators = _journey.estimators()
    cases: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    expected: dict[str, Any] = {}
    unfittable: dict[str, str] = {}
    models: dict[str, Any] = {}
    for backend in BACKENDS:
        for index, (name, est) in enumerate(estimators):
            try:
                model, outputs, per_mode = _journey.fit(clone(est), backend)
            except Exception as exc:  # scikit-learn itself cannot: not devpersist's case
                unfittable[f"{backend}/{name}"] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            models[f"{backend}/{name}"] = model
            X, _, _ = _journey.data_for(est)
            np.save(folder / f"{index}.npy", X)
            reference = _journey.numpy_reference(model, X, list(outputs))
            for where in ("inside", "outside"):
                key = f"{backend}/{name}/{where}"
                target = folder / f"{backend}-{index}-{where}.dvp"
                if where == "inside":
                    with sklearn.config_context(array_api_dispatch=True):
                        devpersist.dump(model, target)
                else:
                    devpersist.dump(model, target)
                cases[backend].append({
                    "key": key, "file": str(target), "backend": backend,
                    "methods": list(outputs), "input": str(folder / f"{index}.npy"),
                })  # fmt: skip
                expected[key] = {"outputs": outputs, "reference": reference,
                                 "per_mode": per_mode}  # fmt: skip
    fitted = time.perf_counter()
    results = _serve(folder, cases)
    print(
        f"journey: fit and dump {fitted - started:.1f} s, serve {time.perf_counter() - fitted:.1f} s"
    )
    return {
        "estimators": [name for name, _ in estimators],
        "expected": expected,
        "results": results,
        "unfittable": unfittable,
        "cases": cases,
        "models": models,
    }


def _serve(folder: Path, cases: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], Any]:
    server = Path(__file__).with_name("_journey_serve.py")

    def run(backend: str, mode: str) -> tuple[tuple[str, str], Any]:
        listing = folder / f"{backend}-{mode}.json"
        listing.write_text(json.dumps(cases[backend]))
        out = folder / f"{backend}-{mode}.npz"
        env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
        if mode != "numpy":
            env["SCIPY_ARRAY_API"] = "1"  # set before Python starts, as docs/config.md says
        done = subprocess.run(
            [sys.executable, str(server), str(listing), mode, str(out)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        meta = json.loads(Path(str(out) + ".json").read_text())
        with np.load(out) as arrays:
            values = {k: arrays[k] for k in arrays.files}
        return (backend, mode), (meta, values)

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(lambda bm: run(*bm), [(b, m) for b in BACKENDS for m in MODES]))


def test_the_matrix_is_generated_from_the_tags(journey):
    names = journey["estimators"]
    needed = ["Pipeline", "FeatureUnion-0", "GridSearchCV-0", "RandomizedSearchCV-0",
              "HalvingGridSearchCV", "GaussianMixture-random", "MaxAbsScaler",
              "RidgeClassifier"]  # fmt: skip
    with_sklearnex = importlib.util.find_spec("sklearnex") is not None  # x86-64 only
    if with_sklearnex:
        needed += ["sklearnex.KMeans", "sklearnex.LinearRegression"]
    assert set(needed) <= set(names), sorted(set(needed) - set(names))
    assert len(names) >= (45 if with_sklearnex else 25)  # 29 from scikit-learn 1.9.1 alone
    fitted = {key.split("/")[1] for key in journey["expected"]}
    assert set(names) <= fitted | {k.split("/")[1] for k in journey["unfittable"]}
    # every estimator fits on at least one backend: the matrix is not silently empty
    assert set(names) == fitted, sorted(set(names) - fitted)
    print("not fittable by scikit-learn itself:", journey["unfittable"])


def _compare(mode: str, before: dict[str, Any], after: dict[str, Any], value: Any,
             reference: Any) -> str | None:  # fmt: skip
    """What differs between an output before saving and after loading (None: nothing)."""
    if mode == "numpy":
        if "error" in after:
            return after["error"]
        if after["type"] != "numpy.ndarray":
            return f"type {after['type']}"
        if reference is not None:  # scikit-learn's own conversion: bit for bit
            if value.dtype != reference.dtype or value.tobytes() != reference.tobytes():
                return "values differ from move_estimator_to's"
            return None
        if "error" in before:
            return None  # nothing to compare the values with
        if value.dtype != before["values"].dtype:
            return f"dtype {value.dtype} != {before['values'].dtype}"
        if not np.allclose(value, before["values"], rtol=1e-6, atol=1e-9, equal_nan=True):
            return "values"
        return None
    if "error" in before or "error" in after:  # the original raised the same way
        if before.get("error") != after.get("error", "").partition(":")[0]:
            return f"{before} != {after}"
        return None
    device = _expected_device(before["namespace"], before["device"], mode)
    wrong = [
        f"{field} {after[field]} != {want}"
        for field, want in (
            ("type", before["type"]),
            ("device", device),
            ("dtype", before["dtype"]),
        )
        if after[field] != want
    ]
    if value.shape != before["values"].shape or value.tobytes() != before["values"].tobytes():
        wrong.append("values differ")
    return "; ".join(wrong) or None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_journey(journey, backend, mode):
    meta, values = journey["results"][(backend, mode)]
    failures = []
    print(f"{backend}/{mode}: served in {meta['_seconds']:.1f} s")
    for case in journey["cases"][backend]:
        key = case["key"]
        got = meta[key]
        if "error" in got:
            failures.append(f"{key}: {got['error']}")
            continue
        wanted = journey["expected"][key]
        for method, before in wanted["outputs"].items():
            before = wanted["per_mode"].get(mode, {}).get(method, before)
            problem = _compare(mode, before, got[method], values.get(f"{key}|{method}"),
                               (wanted["reference"] or {}).get(method))  # fmt: skip
            if problem:
                failures.append(f"{key}.{method}: {problem}")
    total = len(journey["cases"][backend])
    assert not failures, f"{len(failures)} of {total} cases:\n" + "\n".join(failures)


# --------------------------------------------------------------------------- scikit-learn's
# own conversion: ``load(namespace=/device=)`` gives the device arrays
# ``move_estimator_to`` gives, attribute by attribute (types, devices, dtypes, values).
# Where the two differ by design (docs/devices.md), what devpersist does is asserted too:
# numpy arrays, numpy scalars and masked arrays of the fitted state stay as scikit-learn's
# fit left them (move_estimator_to converts them into the target library, a masked array
# losing its mask), and arrays inside objects that are not estimators are converted too
# (move_estimator_to leaves them: CalibratedClassifierCV's calibrators, oneDAL's state).


def _leaves(obj: Any, path: str, out: dict[str, Any], seen: set[int]) -> None:
    """Every array and numpy scalar in an object graph, by path: vars of any object
    (unwrapped), dicts, lists, tuples."""
    import _journey

    if id(obj) in seen or isinstance(obj, (type, types.ModuleType)):
        return
    seen.add(id(obj))
    obj = devpersist.unwrap(obj)
    if _journey.is_array(obj) or isinstance(obj, (np.ma.MaskedArray, np.generic)):
        out[path] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _leaves(value, f"{path}[{key!r}]", out, seen)
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            _leaves(value, f"{path}[{index}]", out, seen)
    elif isinstance(getattr(obj, "__dict__", None), dict) and not isinstance(obj, type):
        for key, value in vars(obj).items():
            _leaves(value, f"{path}.{key}", out, seen)


def _namespace_and_device(backend: str, mode: str) -> tuple[Any, Any]:
    from _journey import HOST, MAPPED

    if mode == "numpy":
        return np, "cpu"
    device = (HOST if mode == "host" else MAPPED)[backend]
    if backend == "torch":
        import sklearn
        import torch
        from sklearn.utils._array_api import get_namespace

        with sklearn.config_context(array_api_dispatch=True):  # else it says numpy
            return get_namespace(torch.zeros(1))[0], device
    import array_api_strict as xp

    return xp, xp.Device(device)


def _load_options(backend: str, target: str) -> dict[str, Any]:
    if target == "numpy":
        return {"namespace": "numpy"}
    if target == "host":
        return {"device": "cpu"}
    # one device for every array, as move_estimator_to places them (a dict moves only the
    # devices it names: sklearnex's host-side arrays next to device1 ones stay put)
    return {"device": "device2" if backend != "torch" else "cpu"}


def _same(a: Any, b: Any) -> list[str]:
    import _journey

    if isinstance(a, np.generic) or isinstance(b, np.generic):
        return [] if type(a) is type(b) and a.tobytes() == b.tobytes() else ["scalar"]
    if isinstance(a, np.ma.MaskedArray) or isinstance(b, np.ma.MaskedArray):
        same = type(a) is type(b) and np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
        return [] if same and a.data.tobytes() == b.data.tobytes() else ["masked array"]
    x, y = _journey.describe(a), _journey.describe(b)
    wrong = [f"{f} {x[f]} != {y[f]}" for f in ("type", "device", "dtype") if x[f] != y[f]]
    if x["values"].shape != y["values"].shape or x["values"].tobytes() != y["values"].tobytes():
        wrong.append("values")
    return wrong


@pytest.mark.parametrize("target", ["numpy", "host", "mapped"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_loads_agree_with_move_estimator_to(journey, backend, target):
    import _journey
    from sklearn.utils._array_api import move_estimator_to

    xp, device = _namespace_and_device(backend, target)
    compared, kept, differences, unmovable = 0, 0, [], {}
    for key, model in journey["models"].items():
        if not key.startswith(backend + "/"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = devpersist.loads(devpersist.dumps(model), **_load_options(backend, target))
            try:
                moved = move_estimator_to(model, xp, device)
            except Exception as exc:  # scikit-learn's own limits (documented in devices.md)
                unmovable[key] = f"{type(exc).__name__}: {exc}"[:120]
                moved = None
        original: dict[str, Any] = {}
        ours: dict[str, Any] = {}
        theirs: dict[str, Any] = {}
        _leaves(model, "", original, set())
        _leaves(loaded, "", ours, set())
        if moved is not None:
            _leaves(moved, "", theirs, set())
        for path, before in original.items():
            if path not in ours:
                differences.append(f"{key}{path}: missing after load")
                continue
            if not _journey.is_array(before) or type(before) is np.ndarray:
                # numpy state: exactly as fit left it
                differences += [f"{key}{path}: {w}" for w in _same(ours[path], before)]
                kept += 1
                continue
            other = theirs.get(path)
            if other is None:
                continue

            def place(a: Any) -> tuple[str, str]:
                d = _journey.describe(a)
                return d["namespace"], d["device"]

            if (
                place(other) == place(before) != place(ours[path])
            ):  # move_estimator_to did not reach it (not an estimator's attribute)
                continue
            differences += [f"{key}{path}: {w}" for w in _same(ours[path], other)]
            compared += 1
    print(f"{backend}/{target}: {compared} device arrays compared with move_estimator_to, "
          f"{kept} numpy values kept; move_estimator_to failed on {unmovable}")  # fmt: skip
    # torch to torch, move_estimator_to itself fails on most models ('Tensor' object has
    # no attribute 'strides'): those are compared in the journey, not here
    assert compared >= (10 if backend == "torch" and target != "numpy" else 100)
    assert not differences, "\n".join(differences)


class SelfConverting:
    """An estimator that converts itself (scikit-learn's ``__sklearn_array_api_convert__``):
    it keeps the name of its arrays' library, which only the hook can update."""

    def __init__(self) -> None:
        self.library = "unknown"

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def __sklearn_array_api_convert__(self, converter: Any) -> Any:
        new = SelfConverting()
        new.coef_ = converter(self.coef_)
        new.library = type(new.coef_).__module__.partition(".")[0]
        return new


def test_a_load_that_converts_honours_the_conversion_hook():
    torch = pytest.importorskip("torch")
    model = SelfConverting()
    model.coef_ = torch.arange(3.0)
    model.library = "torch"
    with pytest.warns(devpersist.UntrustedTypeWarning, match="SelfConverting"):
        data = devpersist.dumps({"m": model})
    trusted = [f"{SelfConverting.__module__}.SelfConverting"]
    plain = devpersist.loads(data, trusted=trusted, namespace="numpy")["m"]
    assert type(plain.coef_) is np.ndarray and plain.library == "numpy"  # the hook ran
    kept = devpersist.loads(data, trusted=trusted)["m"]
    assert kept.library == "torch" and type(kept.coef_) is torch.Tensor  # no conversion
