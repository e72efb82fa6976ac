"""Placement rules (docs/devices.md): where loaded arrays and device objects go.

array-api-strict's fake devices (``CPU_DEVICE``, ``device1``, ``device2``) stand in for
accelerators and torch runs on the CPU; a file saved on a GPU this machine lacks is
made by editing the manifest's device (``cuda:7``), and a missing library by making the
handler say it is not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest
from _repack import edit_manifest

import devpersist
from devpersist.arrays import handler_for_namespace

ABSENT = "cuda:7"


@pytest.fixture
def xp():
    return pytest.importorskip("array_api_strict")


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    if handler_for_namespace("torch").device_available(ABSENT):
        pytest.skip(f"{ABSENT} exists on this machine")
    return torch


def on(xp: Any, device: str, values: Any = (1.0, 2.0, 3.0)) -> Any:
    return xp.asarray(np.asarray(values, dtype=np.float32), device=xp.Device(device))


def roundtrip(obj: Any, **kwargs: Any) -> Any:
    return devpersist.loads(devpersist.dumps(obj), **kwargs)


def move_torch_arrays(data: bytes, device: str) -> bytes:
    """The file as if its torch arrays had been saved on ``device``."""

    def edit(manifest: dict[str, Any]) -> None:
        for entry in manifest["arrays"]:
            if entry["namespace"] == "torch":
                entry["device"] = device

    return edit_manifest(data, edit)


def load_recording(data: bytes, **kwargs: Any) -> tuple[Any, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        obj = devpersist.loads(data, **kwargs)
    return obj, record


@pytest.fixture
def strict_payload(xp):
    return {"a": on(xp, "device1"), "b": on(xp, "device2"), "c": on(xp, "CPU_DEVICE")}


def devices_of(loaded: dict[str, Any]) -> dict[str, Any]:
    return {k: v.device._device for k, v in loaded.items()}


# --------------------------------------------------------------------------- the rules


def test_device_none_keeps_every_saved_device(strict_payload):
    loaded, record = load_recording(devpersist.dumps(strict_payload))
    assert devices_of(loaded) == {"a": "device1", "b": "device2", "c": "CPU_DEVICE"}
    assert record == []


def test_device_string_places_every_array(strict_payload):
    loaded = roundtrip(strict_payload, device="CPU_DEVICE")
    assert set(devices_of(loaded).values()) == {"CPU_DEVICE"}
    for key, array in strict_payload.items():
        expected = np.asarray(array.to_device(loaded[key].device))
        assert np.array_equal(np.asarray(loaded[key]), expected)


def test_device_mapping_moves_only_the_devices_it_names(strict_payload):
    loaded = roundtrip(strict_payload, device={"device1": "device2"})
    assert devices_of(loaded) == {"a": "device2", "b": "device2", "c": "CPU_DEVICE"}


def test_device_cpu_is_the_host_of_every_library(xp, torch, strict_payload):
    payload = {**strict_payload, "t": torch.arange(3.0)}
    loaded, record = load_recording(devpersist.dumps(payload), device="cpu")
    assert record == []
    assert {k: loaded[k].device._device for k in "abc"} == dict.fromkeys("abc", "CPU_DEVICE")
    assert loaded["t"].device == torch.device("cpu")
    for key in "abc":
        expected = np.asarray(strict_payload[key].to_device(xp.Device("CPU_DEVICE")))
        assert np.array_equal(np.asarray(loaded[key]), expected)
    mapped = roundtrip(strict_payload, device={"device1": "cpu"})  # a mapping to the host
    assert devices_of(mapped) == {"a": "CPU_DEVICE", "b": "device2", "c": "CPU_DEVICE"}


@pytest.mark.parametrize("library", ["cupy", "dpnp"])
def test_device_cpu_makes_numpy_of_libraries_without_a_host_device(torch, library, monkeypatch):
    import devpersist.arrays._dpnp as dpnp_handler

    def no_sycl_device(name: str) -> Any:
        raise RuntimeError("no SYCL device")

    monkeypatch.setattr(dpnp_handler, "_sycl_device", no_sycl_device)
    handler = handler_for_namespace(library)
    monkeypatch.setattr(type(handler), "available", lambda self: True)  # never imported
    data = devpersist.dumps({"t": torch.arange(3.0)})

    def saved_on_gpu(manifest: dict[str, Any]) -> None:
        manifest["arrays"][0].update(namespace=library, device="gpu:0")

    loaded, record = load_recording(edit_manifest(data, saved_on_gpu), device="cpu")
    assert type(loaded["t"]) is np.ndarray and loaded["t"].tolist() == [0.0, 1.0, 2.0]
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and "as numpy arrays" in messages[0] and library in messages[0]


def test_dpnp_host_is_a_host_sycl_device_when_there_is_one(monkeypatch):
    import devpersist.arrays._dpnp as dpnp_handler

    class HostDevice:
        filter_string = "opencl:cpu:0"

    monkeypatch.setattr(dpnp_handler, "_sycl_device", lambda name: HostDevice())
    assert handler_for_namespace("dpnp").host() == ("dpnp", "opencl:cpu:0")


def test_device_callable_gets_saved_device_and_library(xp, torch, strict_payload):
    calls = set()

    def place(saved: str, namespace: str) -> str:
        calls.add((saved, namespace))
        return "device2" if namespace == "array_api_strict" else saved

    loaded = roundtrip({**strict_payload, "t": torch.ones(2)}, device=place)
    assert {k: loaded[k].device._device for k in strict_payload} == dict.fromkeys("abc", "device2")
    assert loaded["t"].device == torch.device("cpu")
    assert calls == {
        ("device1", "array_api_strict"), ("device2", "array_api_strict"),
        ("CPU_DEVICE", "array_api_strict"), ("cpu", "torch"),
    }  # fmt: skip


def test_namespace_numpy_converts_torch_and_strict_arrays(xp, torch):
    payload = {
        "strict": on(xp, "device1"),
        "float64": torch.arange(4, dtype=torch.float64),
        "bf16": torch.tensor([1.5, -2.0, 3.0]).to(torch.bfloat16),
        "grad": torch.nn.Parameter(torch.ones(2)),
        "numpy": np.arange(3),
    }
    loaded = roundtrip(payload, namespace="numpy")
    assert all(type(v) is np.ndarray for v in loaded.values())
    assert loaded["strict"].dtype == np.float32 and loaded["strict"].tolist() == [1.0, 2.0, 3.0]
    assert loaded["float64"].dtype == np.float64 and loaded["float64"].tolist() == [0, 1, 2, 3]
    assert loaded["bf16"].dtype == np.float32 and loaded["bf16"].tolist() == [1.5, -2.0, 3.0]
    assert loaded["grad"].tolist() == [1.0, 1.0]


def test_namespace_converts_between_libraries(xp, torch):
    payload = {"strict": on(xp, "device1"), "tensor": torch.arange(3.0)}
    as_torch = roundtrip(payload, namespace="torch")
    assert all(type(v) is torch.Tensor and v.device.type == "cpu" for v in as_torch.values())
    as_strict = roundtrip(payload, namespace="array_api_strict")  # a library's own arrays
    assert as_strict["strict"].device == xp.Device("device1")  # keep their device
    assert as_strict["tensor"].device == xp.Device("CPU_DEVICE")  # converted: the host
    on_device2 = roundtrip(payload, namespace="array_api_strict", device="device2")
    assert {v.device for v in on_device2.values()} == {xp.Device("device2")}


# --------------------------------------------------------------------------- errors


def test_a_device_that_does_not_exist_fails_before_anything_is_built(
    xp, torch, strict_payload, monkeypatch
):
    built = []

    def spying(original: Any) -> Any:
        def spy(self: Any, *args: Any) -> Any:
            built.append(args)
            return original(self, *args)

        return spy

    for namespace in ("array_api_strict", "torch"):
        handler = type(handler_for_namespace(namespace))
        for verb in ("decode", "from_numpy"):
            monkeypatch.setattr(handler, verb, spying(getattr(handler, verb)))
    data = devpersist.dumps({**strict_payload, "t": torch.ones(2)})
    with pytest.raises(devpersist.DeviceError, match="device9"):
        devpersist.loads(data, device={"device1": "device9"})
    with pytest.raises(devpersist.DeviceError, match=ABSENT):
        devpersist.loads(data, device=lambda saved, ns: ABSENT if ns == "torch" else saved)
    with pytest.raises(devpersist.DeviceError, match="nonsense"):
        devpersist.loads(data, device="nonsense")
    assert built == []


def test_a_conversion_the_target_cannot_hold_fails_before_anything_is_built(xp, monkeypatch):
    built = []
    handler = type(handler_for_namespace("array_api_strict"))
    original = handler.from_numpy
    monkeypatch.setattr(
        handler, "from_numpy", lambda self, *a: built.append(a) or original(self, *a)
    )
    data = devpersist.dumps({"coef_": np.ones(3), "classes_": np.array(["no", "yes"])})
    with pytest.raises(devpersist.DeviceError, match=r"dict\['classes_'\].*<U3"):
        devpersist.loads(data, namespace="array_api_strict")
    assert built == []


def test_saved_on_an_absent_device_loads_on_the_host_with_one_warning(torch):
    payload = {"coef_": torch.arange(3.0), "intercept_": torch.tensor(0.5), "n": np.ones(2)}
    data = move_torch_arrays(devpersist.dumps(payload), ABSENT)
    loaded, record = load_recording(data)
    assert [w.category for w in record] == [devpersist.DeviceFallbackWarning]
    message = str(record[0].message)
    assert "2 array(s)" in message
    assert f"dict['coef_']: {ABSENT} -> cpu" in message
    assert f"dict['intercept_']: {ABSENT} -> cpu" in message
    assert "dict['n']" not in message
    assert loaded["coef_"].device == torch.device("cpu")
    assert torch.equal(loaded["coef_"], payload["coef_"])

    with pytest.raises(devpersist.DeviceError, match=ABSENT):
        devpersist.loads(data, fallback="raise")
    loaded, record = load_recording(data, device={ABSENT: "cpu"})  # asked for: no warning
    assert record == [] and loaded["coef_"].device == torch.device("cpu")
    loaded, record = load_recording(data, namespace="numpy")
    assert record == [] and type(loaded["coef_"]) is np.ndarray


def test_a_strict_device_missing_here_falls_back_to_cpu_device(xp, strict_payload, monkeypatch):
    data = devpersist.dumps(strict_payload)
    handler = type(handler_for_namespace("array_api_strict"))
    original = handler.device_available
    monkeypatch.setattr(
        handler, "device_available", lambda self, d: d != "device1" and original(self, d)
    )
    loaded, record = load_recording(data)
    assert devices_of(loaded) == {"a": "CPU_DEVICE", "b": "device2", "c": "CPU_DEVICE"}
    assert len(record) == 1 and "dict['a']: device1 -> CPU_DEVICE" in str(record[0].message)


def test_device_objects_are_placed_like_the_arrays(xp, torch):
    payload = {"x": on(xp, "device1"), "dev": xp.Device("device1"), "host": xp.Device("CPU_DEVICE")}
    loaded = roundtrip(payload, device={"device1": "device2"})
    assert loaded["dev"] == xp.Device("device2") == loaded["x"].device
    assert loaded["host"] == xp.Device("CPU_DEVICE")
    assert roundtrip(payload)["dev"] == xp.Device("device1")

    moved = {"t": torch.ones(2), "dev": torch.device(ABSENT), "cpu": torch.device("cpu")}
    data = move_torch_arrays(devpersist.dumps(moved), ABSENT)
    loaded, record = load_recording(data)
    assert loaded["dev"] == torch.device("cpu") == loaded["t"].device
    assert loaded["cpu"] == torch.device("cpu")
    assert len(record) == 1
    assert roundtrip(moved, device={ABSENT: "cpu"})["dev"] == torch.device("cpu")
    assert roundtrip(moved, namespace="numpy")["dev"] == "cpu"


def test_a_device_object_on_an_absent_device_with_fallback_raise(torch):
    data = devpersist.dumps({"dev": torch.device(ABSENT)})
    with pytest.raises(devpersist.DeviceError, match=ABSENT):
        devpersist.loads(data, fallback="raise")


def test_a_missing_library_is_named_with_the_way_out(torch, monkeypatch):
    data = devpersist.dumps({"t": torch.arange(3.0)})
    monkeypatch.setattr(type(handler_for_namespace("torch")), "available", lambda self: False)
    with pytest.raises(devpersist.MissingLibraryError) as excinfo:
        devpersist.loads(data)
    assert "'torch' is not installed" in str(excinfo.value)
    assert "namespace='numpy'" in str(excinfo.value)
    loaded = devpersist.loads(data, namespace="numpy")
    assert type(loaded["t"]) is np.ndarray and loaded["t"].tolist() == [0.0, 1.0, 2.0]


# --------------------------------------------------------------------------- saving


class ForeignArray:
    """An array of a library devpersist has no handler for."""

    def __dlpack__(self, stream: Any = None) -> Any:
        raise NotImplementedError

    def __array_namespace__(self, api_version: Any = None) -> Any:
        raise NotImplementedError


class Model:
    def __init__(self, coef: Any) -> None:
        self.alpha = 1.0
        self.coef_ = coef


def assert_refused(tmp_path: Any, obj: Any, path: str, type_name: str, reason: str) -> None:
    target = tmp_path / "model.dvp"
    with pytest.raises(devpersist.UnsupportedObjectError) as excinfo:
        devpersist.dump(obj, target)
    error = excinfo.value
    assert error.path == path
    assert error.type_name == type_name
    assert path in str(error) and reason in str(error)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left


def test_an_array_of_an_unknown_library_is_refused(tmp_path):
    assert_refused(
        tmp_path, Model(ForeignArray()), "Model.coef_", f"{__name__}.ForeignArray", "no handler"
    )


def test_tensors_devpersist_cannot_save_are_refused(torch, tmp_path):
    class MyTensor(torch.Tensor):
        pass

    cases = [
        (torch.empty(3, device="meta"), "torch.Tensor", "meta device"),
        (torch.eye(2).to_sparse(), "torch.Tensor", "sparse"),
        (torch.ones(2).as_subclass(MyTensor), f"{__name__}.{MyTensor.__qualname__}", "plain"),
    ]
    for tensor, type_name, reason in cases:
        assert_refused(tmp_path, [np.ones(2), {"w": tensor}], "list[1]['w']", type_name, reason)


# --------------------------------------------------------------------------- without torch


def test_a_torch_fitted_model_loads_as_numpy_where_torch_cannot_be_imported(torch, tmp_path):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import Ridge

    X = torch.rand(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    try:
        with sklearn.config_context(array_api_dispatch=True):
            model = Ridge(solver="svd").fit(X, y)
    except (ImportError, ValueError, RuntimeError) as exc:  # array API support missing
        pytest.skip(f"cannot fit on torch here: {exc}")
    assert type(model.coef_) is torch.Tensor
    path = tmp_path / "ridge.dvp"
    devpersist.dump(model, path)
    np.save(tmp_path / "X.npy", X.numpy())
    expected = model.coef_.numpy()

    code = textwrap.dedent(
        f"""
        import sys

        class NoTorch:  # as if torch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        import devpersist

        try:
            devpersist.load({str(path)!r})
        except devpersist.MissingLibraryError as exc:
            assert "namespace='numpy'" in str(exc), exc
        else:
            raise AssertionError("loading torch arrays without torch must fail")
        model = devpersist.load({str(path)!r}, namespace="numpy")
        assert type(model.coef_) is np.ndarray and model.coef_.dtype == np.float64
        X = np.load({str(tmp_path / "X.npy")!r})
        prediction = model.predict(X)
        assert type(prediction) is np.ndarray and prediction.shape == (30,)
        assert "torch" not in sys.modules
        print(repr(model.coef_.tolist()))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert eval(result.stdout) == expected.tolist()


def test_device_objects_that_fall_back_are_in_the_one_warning(monkeypatch):
    torch = pytest.importorskip("torch")
    from devpersist import _namespaces

    # a file made on a machine with a GPU: its device object says cuda:7
    monkeypatch.setattr(_namespaces, "device_reduce", lambda obj: ("torch", "cuda:7"))
    data = devpersist.dumps({"where": torch.device("cpu"), "w": torch.ones(2)})
    monkeypatch.undo()
    with pytest.warns(devpersist.DeviceFallbackWarning) as caught:
        out = devpersist.loads(data)
    assert len(caught) == 1 and "cuda:7" in str(caught[0].message)
    assert out["where"] == torch.device("cpu")
    with pytest.raises(devpersist.DeviceError, match="cuda:7"):
        devpersist.loads(data, fallback="raise")


def test_torch_dtypes_in_the_graph_are_stored_by_name_and_converted():
    torch = pytest.importorskip("torch")
    payload = {
        "dtype": torch.float32,
        "half": torch.bfloat16,
        "w": torch.ones(2, dtype=torch.bfloat16),
    }
    data = devpersist.dumps(payload)
    assert devpersist.get_untrusted_types(data) == []
    same = devpersist.loads(data)
    assert same["dtype"] is torch.float32 and same["half"] is torch.bfloat16
    plain = devpersist.loads(data, namespace="numpy")
    assert plain["dtype"] == np.dtype("float32")
    assert plain["half"] == plain["w"].dtype == np.dtype("float32")  # bfloat16 widens alike


def test_fortran_like_layouts_are_kept(xp, torch):
    """scikit-learn keeps transposed views (PCA's components_): a matmul over another
    layout rounds differently, so a loaded model would not predict bit for bit."""
    base = np.random.default_rng(0).random((4, 6))
    payload = {
        "t": torch.asarray(base).t(),  # Fortran order
        "t_slice": torch.asarray(base).t()[:3],  # a slice of one: strides still grow
        "s": xp.asarray(np.asfortranarray(base), device=xp.Device("device1")),
    }
    loaded = roundtrip(payload)
    for key in ("t", "t_slice"):
        assert loaded[key].stride()[0] < loaded[key].stride()[1]
        assert torch.equal(loaded[key], payload[key])
    host = np.asarray(loaded["s"].to_device(xp.Device("CPU_DEVICE")))
    assert host.flags.f_contiguous and not host.flags.c_contiguous
    plain = roundtrip(payload, namespace="numpy")
    assert plain["t"].flags.f_contiguous and np.array_equal(plain["t"], base.T)


@pytest.mark.parametrize(
    ("saved", "namespace", "expected"),
    [
        ("numpy", None, "numpy"),
        ("torch", "numpy", "numpy"),
        ("array_api_compat.torch", "numpy", "numpy"),
        ("array_api_compat.torch", "array_api_strict", "array_api_strict"),
        (
            "sklearn.externals.array_api_compat.numpy",
            None,
            "sklearn.externals.array_api_compat.numpy",
        ),
        ("array_api_strict", "torch", "torch"),
    ],
)
def test_namespace_modules_follow_the_placement(saved, namespace, expected):
    pytest.importorskip("torch")
    pytest.importorskip("array_api_strict")
    from devpersist._devices import Placement
    from devpersist._namespaces import namespace_module

    assert namespace_module(saved, Placement(namespace=namespace)).__name__ == expected


@pytest.mark.parametrize("name", ["os", "numpy.linalg", "array_api_compat.os", "", 3])
def test_other_modules_are_no_namespace_modules(name):
    from devpersist._namespaces import namespace_module

    with pytest.raises(devpersist.FormatError):
        namespace_module(name)
