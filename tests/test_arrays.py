"""Array handlers: one contract, mixed into one test class per array library.

Each ``Test<Library>`` class provides a ``lib`` fixture (skipped when the library is not
installed) that makes arrays of every dtype the library has, filled with random bits
(NaN payloads, signed zeros and subnormals included), and says how to read an array's
description and raw bytes. The contract then round-trips them through
``devpersist.dumps``/``loads`` and compares bit for bit: type, dtype, shape, device, bytes.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest

import devpersist
from devpersist.arrays import foreign_array, handler_for, handler_for_namespace

SHAPE = (3, 5)
EDGE_SHAPES = [(), (1,), (0,), (4, 0), (0, 2, 3)]


def roundtrip(obj: Any, **kwargs: Any) -> Any:
    return devpersist.loads(devpersist.dumps(obj), **kwargs)


def random_bits(shape: tuple[int, ...], dtype: np.dtype, seed: int = 0) -> np.ndarray:
    """A C-ordered numpy array of ``dtype`` whose bytes are random (bools 0 or 1)."""
    rng = np.random.default_rng(seed)
    count = math.prod(shape)
    if dtype.kind == "b":
        return rng.integers(0, 2, count).astype(bool).reshape(shape)
    raw = rng.integers(0, 256, count * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


class ArrayContract:
    """What every handler guarantees. ``lib`` (a fixture of the subclass) has:

    - ``namespace``, ``device`` (the device string recorded for ``make``'s arrays);
    - ``dtypes``: names of every dtype to test;
    - ``make(dtype, shape)``: an array of random bits; ``strided(array)``: a
      non-contiguous view of a 2-d array;
    - ``describe(array)``: everything but the values (type, dtype, shape, device...);
      ``raw(array)``: the values' bytes in C order.
    """

    def assert_identical(self, lib: Any, got: Any, want: Any, what: str = "") -> None:
        assert type(got) is type(want), what
        assert lib.describe(got) == lib.describe(want), what
        assert lib.raw(got) == lib.raw(want), f"{what}: bytes differ"

    def test_every_dtype(self, lib):
        arrays = {name: lib.make(name, SHAPE) for name in lib.dtypes}
        loaded = roundtrip(arrays)
        for name, array in arrays.items():
            self.assert_identical(lib, loaded[name], array, name)

    def test_zero_d_and_empty(self, lib):
        arrays = {
            f"{name}{shape}": lib.make(name, shape) for name in lib.dtypes for shape in EDGE_SHAPES
        }
        loaded = roundtrip(arrays)
        for key, array in arrays.items():
            self.assert_identical(lib, loaded[key], array, key)

    def test_non_contiguous_views(self, lib):
        views = {name: lib.strided(lib.make(name, (6, 8))) for name in lib.dtypes}
        loaded = roundtrip(views)
        for name, view in views.items():
            assert lib.raw(loaded[name]) == lib.raw(view), name
            assert lib.describe(loaded[name]) == lib.describe(view), name

    def test_shared_array_keeps_its_identity(self, lib):
        a = lib.make(lib.dtypes[0], SHAPE)
        data = devpersist.dumps({"a": a, "b": a, "nested": [a, (a,)]})
        assert len(devpersist.info(data)["arrays"]) == 1
        loaded = devpersist.loads(data)
        assert loaded["a"] is loaded["b"] is loaded["nested"][0] is loaded["nested"][1][0]

    def test_saving_leaves_the_live_arrays_unchanged(self, lib):
        arrays = {name: lib.make(name, (6, 8)) for name in lib.dtypes}
        arrays["view"] = lib.strided(lib.make(lib.dtypes[-1], (6, 8)))
        before = {k: (lib.describe(a), lib.raw(a)) for k, a in arrays.items()}
        devpersist.dumps(arrays)
        assert {k: (lib.describe(a), lib.raw(a)) for k, a in arrays.items()} == before

    def test_manifest_records_library_and_device(self, lib):
        info = devpersist.info(devpersist.dumps({"x": lib.make(lib.dtypes[0], SHAPE)}))
        (entry,) = info["arrays"]
        assert entry["namespace"] == lib.namespace
        assert entry["device"] == lib.device
        assert entry["path"] == "dict['x']"

    def test_handler_is_found_by_type(self, lib):
        array = lib.make(lib.dtypes[0], SHAPE)
        handler = handler_for(type(array))
        assert handler is not None and handler.namespace == lib.namespace
        assert foreign_array(type(array)) is None

    def test_file_round_trip(self, lib, tmp_path):
        arrays = {name: lib.make(name, SHAPE) for name in lib.dtypes}
        devpersist.dump(arrays, tmp_path / "arrays.dvp")
        loaded = devpersist.load(tmp_path / "arrays.dvp")
        for name, array in arrays.items():
            self.assert_identical(lib, loaded[name], array, name)

    def test_converts_to_numpy(self, lib):
        arrays = {name: lib.make(name, SHAPE) for name in lib.dtypes}
        loaded = roundtrip(arrays, namespace="numpy")
        for name, array in arrays.items():
            assert type(loaded[name]) is np.ndarray, name
            assert loaded[name].shape == SHAPE, name
            expected = lib.numpy_values(array)
            assert loaded[name].dtype == expected.dtype, name
            assert loaded[name].tobytes() == expected.tobytes(), name


# --------------------------------------------------------------------------- numpy


class NumpyLib:
    namespace = "numpy"
    device = "cpu"
    dtypes = (
        "?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "g",
        "c8", "c16", "G", "S7", "U5", "V3", "M8[ns]", "m8[s]", "M8[D]", "record",
    )  # fmt: skip
    record = np.dtype([("x", "<f4"), ("y", ">i2", (2,)), ("z", "S3"), ("t", "M8[s]")])

    def make(self, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        return random_bits(shape, self.record if dtype == "record" else np.dtype(dtype))

    def strided(self, array: np.ndarray) -> np.ndarray:
        return array[::2, 1::3]

    def describe(self, array: np.ndarray) -> tuple[Any, ...]:
        return (array.dtype, array.shape, array.flags.writeable)

    def raw(self, array: np.ndarray) -> bytes:
        return np.ascontiguousarray(array).tobytes()

    def numpy_values(self, array: np.ndarray) -> np.ndarray:
        return array


class TestNumpy(ArrayContract):
    @pytest.fixture
    def lib(self):
        return NumpyLib()

    def test_fortran_order_is_kept(self, lib):
        arrays = {name: np.asfortranarray(lib.make(name, (4, 6))) for name in lib.dtypes}
        loaded = roundtrip(arrays)
        for name, array in arrays.items():
            assert loaded[name].flags.f_contiguous and not loaded[name].flags.c_contiguous
            self.assert_identical(lib, loaded[name], array, name)

    def test_byte_order_is_kept(self, lib):
        arrays = {name: lib.make(name, SHAPE) for name in (">i4", ">f8", ">c16", ">U3", ">M8[us]")}
        loaded = roundtrip(arrays)
        for name, array in arrays.items():
            assert loaded[name].dtype.str == array.dtype.str
            self.assert_identical(lib, loaded[name], array, name)

    def test_read_only_arrays_stay_read_only(self, lib):
        array = lib.make("f8", SHAPE)
        array.flags.writeable = False
        loaded = roundtrip({"a": array, "w": lib.make("f8", SHAPE)})
        assert not loaded["a"].flags.writeable
        assert loaded["w"].flags.writeable
        self.assert_identical(lib, loaded["a"], array)

    def test_structured_datetime_and_strings(self):
        records = np.array(
            [(1.5, [1, 2], b"abc"), (-0.0, [3, 4], b"")],
            dtype=[("x", "<f4"), ("y", "<i2", (2,)), ("z", "S3")],
        )
        dates = np.array(["2024-02-29T12:00", "NaT"], dtype="M8[m]")
        text = np.array(["héllo", "", "日本"], dtype="U5")
        loaded = roundtrip({"r": records, "d": dates, "t": text})
        assert loaded["r"].dtype == records.dtype and loaded["r"].tobytes() == records.tobytes()
        assert loaded["d"].dtype == dates.dtype
        assert np.array_equal(loaded["d"], dates, equal_nan=True)
        assert loaded["t"].tolist() == text.tolist()

    def test_memmap_loads_as_ndarray(self, tmp_path):
        mm = np.memmap(tmp_path / "a.bin", dtype="<f4", mode="w+", shape=(3, 4))
        mm[:] = np.arange(12).reshape(3, 4)
        loaded = roundtrip({"m": mm})["m"]
        assert type(loaded) is np.ndarray and np.array_equal(loaded, mm)

    def test_ml_dtypes_arrays_keep_their_dtype(self):
        ml_dtypes = pytest.importorskip("ml_dtypes")
        names = ["bfloat16", "float8_e4m3fn", "float8_e5m2", "int4"]
        arrays = {n: random_bits(SHAPE, np.dtype("u1" if n != "bfloat16" else "u2")) for n in names}
        arrays = {n: a.view(getattr(ml_dtypes, n)) for n, a in arrays.items()}
        data = devpersist.dumps(arrays)
        entries = {e["path"]: e for e in devpersist.info(data)["arrays"]}
        assert entries["dict['bfloat16']"]["meta"]["dtype"] == "bfloat16"
        loaded = devpersist.loads(data)
        for name, array in arrays.items():
            assert loaded[name].dtype == array.dtype
            assert loaded[name].tobytes() == array.tobytes()


# --------------------------------------------------------------------------- torch

TORCH_DTYPES = [
    "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
]  # fmt: skip
_COMPLEX_HALF = "ignore:ComplexHalf support is experimental:UserWarning"


class TorchLib:
    namespace = "torch"
    device = "cpu"

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.dtypes = [n for n in TORCH_DTYPES if hasattr(torch, n)]

    def make(self, dtype: str, shape: tuple[int, ...]) -> Any:
        torch = self.torch
        target = getattr(torch, dtype)
        itemsize = torch.empty((), dtype=target).element_size()
        if dtype == "bool":
            return torch.from_numpy(random_bits(shape, np.dtype(bool)))
        if math.prod(shape) == 0:
            return torch.empty(shape, dtype=target)
        bits = random_bits((*shape, itemsize), np.dtype("u1"))
        flat = torch.from_numpy(bits.reshape(-1).copy()).view(target)
        return flat.reshape(shape)

    def strided(self, t: Any) -> Any:
        return t[::2, 1::3]

    def describe(self, t: Any) -> tuple[Any, ...]:
        return (type(t), str(t.dtype), tuple(t.shape), str(t.device), t.requires_grad)

    def raw(self, t: Any) -> bytes:
        host = t.detach().cpu().resolve_conj().resolve_neg().contiguous()
        if host.numel() == 0:
            return b""
        return bytes(host.reshape(-1).view(self.torch.uint8).numpy().tobytes())

    def numpy_values(self, t: Any) -> np.ndarray:
        torch = self.torch
        host = t.detach().cpu()
        if t.dtype == torch.complex32:
            return torch.view_as_real(host).float().numpy().view(np.complex64)[..., 0]
        if t.dtype not in (torch.float16, torch.float32, torch.float64) and t.is_floating_point():
            return host.float().numpy()
        return host.numpy()


@pytest.mark.filterwarnings(_COMPLEX_HALF)
class TestTorch(ArrayContract):
    @pytest.fixture
    def lib(self):
        return TorchLib(pytest.importorskip("torch"))

    def test_bfloat16_bits_are_kept(self, lib):
        torch = lib.torch
        t = torch.tensor([1.0, -0.0, float("inf"), float("nan"), 1e-40, 3.3895e38])
        t = t.to(torch.bfloat16)
        loaded = roundtrip({"t": t})["t"]
        assert loaded.dtype == torch.bfloat16
        assert torch.equal(loaded.view(torch.int16), t.view(torch.int16))
        entry = devpersist.info(devpersist.dumps({"t": t}))["arrays"][0]
        assert entry["dtype"] == "<u2" and entry["meta"] == {"dtype": "bfloat16"}

    def test_bfloat16_converts_to_float32_exactly(self, lib):
        torch = lib.torch
        t = lib.make("bfloat16", (64,))
        loaded = roundtrip({"t": t}, namespace="numpy")["t"]
        assert loaded.dtype == np.float32
        bits = t.view(torch.int16).numpy().view(np.uint16)
        assert np.array_equal(loaded.view(np.uint32) >> 16, bits)

    def test_requires_grad_and_parameters(self, lib):
        torch = lib.torch
        payload = {
            "grad": torch.ones(3, requires_grad=True),
            "computed": torch.ones(3, requires_grad=True) * 2,  # not a leaf
            "param": torch.nn.Parameter(torch.arange(4.0)),
            "frozen": torch.nn.Parameter(torch.arange(4.0), requires_grad=False),
            "int_param": torch.nn.Parameter(torch.arange(4), requires_grad=False),
            "plain": torch.ones(2),
        }
        loaded = roundtrip(payload)
        for key, t in payload.items():
            assert type(loaded[key]) is type(t), key
            assert loaded[key].requires_grad == t.requires_grad, key
            assert torch.equal(loaded[key].detach(), t.detach()), key
            assert loaded[key].is_leaf, key
        assert type(loaded["plain"]) is torch.Tensor

    def test_parameters_in_a_module_state_dict(self, lib):
        torch = lib.torch
        layer = torch.nn.Linear(3, 2)
        loaded = roundtrip(dict(layer.named_parameters()))
        assert all(type(p) is torch.nn.Parameter and p.requires_grad for p in loaded.values())
        assert torch.equal(loaded["weight"], layer.weight)

    def test_conjugate_and_negative_views_are_resolved(self, lib):
        torch = lib.torch
        z = torch.complex(torch.arange(4.0), torch.ones(4))
        payload = {
            "conj": z.conj(),
            "neg": torch._neg_view(z),
            "t": torch.arange(6.0).reshape(2, 3).t(),
            "one": torch.ones(1, 5, dtype=torch.float64)[:, 2],  # stride 5, "contiguous"
            "offset": torch.arange(10.0)[7:],
        }
        loaded = roundtrip(payload)
        for key, t in payload.items():
            assert not loaded[key].is_conj() and not loaded[key].is_neg()
            assert torch.equal(loaded[key], t.resolve_conj().resolve_neg()), key
        assert payload["conj"].is_conj()  # the live view is untouched

    def test_staged_copy_in_chunks(self, lib):
        from devpersist.arrays._torch import host_chunks

        t = lib.make("float64", (10, 7)).t()
        for stage in (False, True):
            chunks = [bytes(c) for c in host_chunks(t, chunk_bytes=48, stage=stage)]
            assert all(len(c) <= 48 for c in chunks) and len(chunks) == math.ceil(560 / 48)
            assert b"".join(chunks) == lib.raw(t)
        assert list(host_chunks(lib.make("float32", (0, 3)), stage=True)) == []

    def test_devices(self, lib):
        torch = lib.torch
        handler = handler_for_namespace("torch")
        assert handler.device_available("cpu") and handler.device_available("cpu:0")
        assert not handler.device_available("nonsense:0")
        assert not handler.device_available("meta")
        assert handler.normalize_device("cpu:0") == "cpu"
        assert handler.device_object("cpu") == torch.device("cpu")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        assert handler.device_available(f"cuda:{count}") is False
        assert handler.device_available("cuda:0") is (count > 0)

    def test_from_numpy_takes_any_numpy_layout(self, lib):
        torch = lib.torch
        handler = handler_for_namespace("torch")
        read_only = np.arange(6.0).reshape(2, 3)
        read_only.flags.writeable = False
        swapped = np.arange(4, dtype=">i4")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t1 = handler.from_numpy(read_only, "cpu")
            t2 = handler.from_numpy(swapped, "cpu")
        assert torch.equal(t1, torch.arange(6.0).reshape(2, 3))
        assert torch.equal(t2, torch.arange(4, dtype=torch.int32))
        assert not handler.accepts(np.dtype("U3")) and not handler.accepts(np.dtype("M8[s]"))
        with pytest.raises(devpersist.DeviceError):
            handler.from_numpy(np.array(["a"]), "cpu")

    @pytest.mark.gpu
    def test_cuda_round_trip(self, lib):
        torch = lib.torch
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device")
        arrays = {n: lib.make(n, (33, 7)).to("cuda:0") for n in lib.dtypes}
        arrays["view"] = arrays["float32"].t()
        loaded = roundtrip(arrays)
        for name, t in arrays.items():
            assert loaded[name].device == torch.device("cuda:0"), name
            assert lib.raw(loaded[name]) == lib.raw(t), name
        host = roundtrip(arrays, device="cpu")
        assert all(t.device.type == "cpu" for t in host.values())


# --------------------------------------------------------------------------- array-api-strict


class StrictLib:
    namespace = "array_api_strict"
    device = "device1"
    dtypes = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "float32", "float64", "complex64", "complex128")  # fmt: skip

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def make(self, dtype: str, shape: tuple[int, ...]) -> Any:
        bits = random_bits(shape, np.dtype(dtype))
        return self.xp.asarray(bits, device=self.xp.Device(self.device))

    def strided(self, a: Any) -> Any:
        return a[::2, 1::3]

    def _host(self, a: Any) -> np.ndarray:
        return np.asarray(a.to_device(self.xp.Device("CPU_DEVICE")))

    def describe(self, a: Any) -> tuple[Any, ...]:
        return (type(a), str(a.dtype), tuple(a.shape), a.device)

    def raw(self, a: Any) -> bytes:
        return np.ascontiguousarray(self._host(a)).tobytes()

    def numpy_values(self, a: Any) -> np.ndarray:
        return self._host(a)


class TestArrayApiStrict(ArrayContract):
    @pytest.fixture
    def lib(self):
        return StrictLib(pytest.importorskip("array_api_strict"))

    def test_every_device_is_kept(self, lib):
        xp = lib.xp
        arrays = {
            name: xp.asarray(np.arange(4, dtype=np.float32), device=xp.Device(name))
            for name in ("CPU_DEVICE", "device1", "device2", "no_float64", "no_x64")
        }
        loaded = roundtrip(arrays)
        for name, array in arrays.items():
            assert loaded[name].device == xp.Device(name)
            assert lib.raw(loaded[name]) == lib.raw(array)

    def test_a_dtype_the_target_device_lacks_is_a_device_error(self, lib):
        with pytest.raises(devpersist.DeviceError, match="no_float64"):
            roundtrip({"a": lib.make("float64", SHAPE)}, device="no_float64")


# --------------------------------------------------------------------------- JAX

JAX_DTYPES = ["bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float16",
              "bfloat16", "float32", "complex64", "float8_e4m3fn", "float8_e5m2"]  # fmt: skip


class JaxLib:
    namespace = "jax"
    device = "cpu:0"

    def __init__(self, jax: Any) -> None:
        self.jax = jax
        self.dtypes = JAX_DTYPES + (
            ["int64", "uint64", "float64", "complex128"] if jax.config.jax_enable_x64 else []
        )

    def _dtype(self, name: str) -> np.dtype:
        return np.dtype(getattr(self.jax.numpy, name))

    def make(self, dtype: str, shape: tuple[int, ...]) -> Any:
        target = self._dtype(dtype)
        storage = np.dtype(bool) if dtype == "bool" else np.dtype(f"u{target.itemsize}")
        return self.jax.device_put(random_bits(shape, storage).view(target))

    def strided(self, a: Any) -> Any:
        return a[::2, 1::3]  # JAX arrays are always contiguous: a sliced copy

    def describe(self, a: Any) -> tuple[Any, ...]:
        (device,) = a.devices()
        return (type(a), str(a.dtype), tuple(a.shape), f"{device.platform}:{device.id}")

    def raw(self, a: Any) -> bytes:
        return np.asarray(a).tobytes()

    def numpy_values(self, a: Any) -> np.ndarray:
        host = np.asarray(a)
        if host.dtype.type.__module__ == "ml_dtypes":
            return host.astype(np.float32)
        return host


class TestJax(ArrayContract):
    @pytest.fixture
    def lib(self):
        return JaxLib(pytest.importorskip("jax"))

    def test_sharded_and_deleted_arrays_are_refused(self, lib):
        x = lib.jax.numpy.ones(3)
        x.delete()
        with pytest.raises(devpersist.UnsupportedObjectError, match="deleted"):
            devpersist.dumps({"x": x})

    def test_float64_without_x64_is_an_error_not_a_silent_downcast(self, lib):
        if lib.jax.config.jax_enable_x64:
            pytest.skip("jax_enable_x64 is on")
        with pytest.raises(devpersist.DeviceError, match="jax_enable_x64"):
            roundtrip({"a": np.ones(3)}, namespace="jax")
        assert roundtrip({"a": np.ones(3, np.float32)}, namespace="jax")["a"].dtype == np.float32

    def test_devices(self, lib):
        handler = handler_for_namespace("jax")
        assert handler.device_available("cpu:0") and handler.device_available("cpu")
        assert handler.normalize_device("cpu") == "cpu:0"
        assert not handler.device_available("gpu:99") and not handler.device_available("x:y")
        assert handler.device_object("cpu:0") == lib.jax.devices("cpu")[0]


# --------------------------------------------------------------------------- CuPy, dpnp


class CupyLib:
    namespace = "cupy"
    device = "cuda:0"
    dtypes = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "float16", "float32", "float64", "complex64", "complex128")  # fmt: skip

    def __init__(self, cupy: Any) -> None:
        self.cupy = cupy

    def make(self, dtype: str, shape: tuple[int, ...]) -> Any:
        return self.cupy.asarray(random_bits(shape, np.dtype(dtype)))

    def strided(self, a: Any) -> Any:
        return a[::2, 1::3]

    def describe(self, a: Any) -> tuple[Any, ...]:
        return (type(a), a.dtype, a.shape, a.device.id)

    def raw(self, a: Any) -> bytes:
        return bytes(self.cupy.asnumpy(self.cupy.ascontiguousarray(a)).tobytes())

    def numpy_values(self, a: Any) -> np.ndarray:
        return self.cupy.asnumpy(a)


@pytest.mark.gpu
class TestCupy(ArrayContract):
    @pytest.fixture
    def lib(self):
        cupy = pytest.importorskip("cupy")
        try:
            if cupy.cuda.runtime.getDeviceCount() == 0:
                pytest.skip("needs a CUDA device")
        except Exception:
            pytest.skip("needs a CUDA device")
        return CupyLib(cupy)

    def test_fortran_order_is_kept(self, lib):
        a = lib.cupy.asfortranarray(lib.make("float32", (4, 6)))
        loaded = roundtrip({"a": a})["a"]
        assert loaded.flags.f_contiguous and lib.raw(loaded) == lib.raw(a)


class DpnpLib:
    namespace = "dpnp"
    dtypes = ("bool", "int32", "int64", "float32", "complex64")

    def __init__(self, dpnp: Any) -> None:
        self.dpnp = dpnp
        self.device = dpnp.empty(1).sycl_device.filter_string

    def make(self, dtype: str, shape: tuple[int, ...]) -> Any:
        return self.dpnp.asarray(random_bits(shape, np.dtype(dtype)))

    def strided(self, a: Any) -> Any:
        return a[::2, 1::3]

    def describe(self, a: Any) -> tuple[Any, ...]:
        return (type(a), a.dtype, a.shape, a.sycl_device.filter_string)

    def raw(self, a: Any) -> bytes:
        return bytes(np.ascontiguousarray(self.dpnp.asnumpy(a)).tobytes())

    def numpy_values(self, a: Any) -> np.ndarray:
        return self.dpnp.asnumpy(a)


class TestDpnp(ArrayContract):
    @pytest.fixture
    def lib(self):
        return DpnpLib(pytest.importorskip("dpnp"))


# --------------------------------------------------------------------------- imports


def test_numpy_only_model_imports_no_device_library():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from sklearn.linear_model import Ridge
        import devpersist

        X = np.random.default_rng(0).random((20, 3))
        model = devpersist.loads(devpersist.dumps(Ridge().fit(X, X[:, 0])))
        model.predict(X)
        libraries = ("torch", "cupy", "jax", "jaxlib", "dpnp", "dpctl", "array_api_strict")
        print(sorted(name for name in libraries if name in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_handler_modules_import_no_library():
    code = textwrap.dedent(
        """
        import sys
        from devpersist.arrays import handler_for_namespace, registered_namespaces
        handlers = [handler_for_namespace(ns) for ns in registered_namespaces()]
        import numpy as np
        assert all(not h.owns(np.ndarray) for h in handlers if h.namespace != "numpy")
        libraries = ("torch", "cupy", "jax", "jaxlib", "dpnp", "dpctl", "array_api_strict")
        print(sorted(name for name in libraries if name in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


# --------------------------------------------------------------------------- dtypes numpy lacks


@pytest.mark.parametrize(
    "name",
    ["float8_e3m4", "float8_e4m3", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz",
     "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn",
     "float4_e2m1fn", "int4", "uint4", "int2", "uint2", "int1", "uint1"],
)  # fmt: skip
def test_small_types_convert_like_ml_dtypes(name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    from devpersist.arrays._dtypes import to_numpy

    widths = {"float6_e2m3fn": 6, "float6_e3m2fn": 6, "float4_e2m1fn": 4, "int4": 4, "uint4": 4,
              "int2": 2, "uint2": 2, "int1": 1, "uint1": 1}  # fmt: skip
    patterns = np.arange(1 << widths.get(name, 8), dtype=np.uint8)  # the defined patterns
    ours = to_numpy(patterns, name)
    reference = patterns.view(getattr(ml_dtypes, name)).astype(ours.dtype)
    assert np.array_equal(ours, reference, equal_nan=ours.dtype.kind == "f")
    if ours.dtype.kind == "f":  # signed zeros too
        finite = ~np.isnan(ours)
        assert np.array_equal(np.signbit(ours[finite]), np.signbit(reference[finite]))


@pytest.mark.filterwarnings(_COMPLEX_HALF)
@pytest.mark.parametrize(
    "name",
    [
        "bfloat16",
        "complex32",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float8_e8m0fnu",
    ],
)
def test_small_types_convert_like_torch(name):
    torch = pytest.importorskip("torch")
    from devpersist.arrays._dtypes import storage_dtype, to_numpy

    bits = random_bits((257,), storage_dtype(name), seed=1)
    t = torch.from_numpy(bits.copy()).view(getattr(torch, name))
    ours = to_numpy(bits, name)
    if name == "complex32":
        reference = torch.view_as_real(t).float().numpy().view(np.complex64)[..., 0]
    else:
        reference = t.float().numpy()
    assert ours.dtype == reference.dtype
    assert np.array_equal(ours, reference, equal_nan=True)


def test_packed_float4_has_no_numpy_form():
    from devpersist.arrays._dtypes import numpy_dtype

    with pytest.raises(devpersist.DeviceError, match="packed"):
        numpy_dtype("float4_e2m1fn_x2")


# --------------------------------------------------------------------------- a new library

FAKE_LIBRARY = '''
"""A made-up array library: a numpy array that lives on a named device."""
import numpy as np


class WrappedArray:
    def __init__(self, data, device):
        self.data = np.asarray(data)
        self.device = device
'''

FAKE_HANDLER = '''
"""The one module a new library needs: its handler."""
from devpersist.arrays import ArrayHandler, Encoded
from devpersist.arrays._numpy import contiguous_chunks

import fakearr


class WrappedHandler(ArrayHandler):
    label = "fakearr"
    has_devices = True
    host_device = "fake:host"

    def owns(self, tp):
        return tp is fakearr.WrappedArray

    def encode(self, obj):
        data = obj.data
        return Encoded(dtype=data.dtype, shape=data.shape, order="C", device=obj.device,
                       chunks=contiguous_chunks(data, "C"))

    def build(self, array, device):
        return fakearr.WrappedArray(array.copy(), device)

    def device_available(self, device):
        return device.startswith("fake:")
'''


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    """A library and its handler module on sys.path, registered with one line."""
    from devpersist.arrays import Library, register, unregister

    (tmp_path / "fakearr.py").write_text(FAKE_LIBRARY)
    (tmp_path / "fakearr_devpersist.py").write_text(FAKE_HANDLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import fakearr

    register(Library("fakearr", "fakearr_devpersist:WrappedHandler", ("fakearr",), "fakearr"))
    try:
        yield fakearr
    finally:
        unregister("fakearr")
        for name in ("fakearr", "fakearr_devpersist"):
            sys.modules.pop(name, None)


def test_a_new_library_is_one_handler_module_and_one_registry_line(fake_library):
    from devpersist.arrays import namespaces

    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    payload = {"w": fake_library.WrappedArray(values, "fake:3"), "n": np.arange(3)}
    data = devpersist.dumps(payload)

    entries = devpersist.info(data)["arrays"]
    by_path = {e["path"]: e for e in entries}
    assert (by_path["dict['w']"]["namespace"], by_path["dict['w']"]["device"]) == (
        "fakearr",
        "fake:3",
    )
    assert "fakearr" in namespaces()

    loaded = devpersist.loads(data)
    assert type(loaded["w"]) is fake_library.WrappedArray
    assert loaded["w"].device == "fake:3"
    assert loaded["w"].data.dtype == values.dtype
    assert loaded["w"].data.tobytes() == values.tobytes()

    moved = devpersist.loads(data, device="fake:0")
    assert moved["w"].device == "fake:0"
    assert moved["w"].data.tobytes() == values.tobytes()

    converted = devpersist.loads(data, namespace="numpy")
    assert type(converted["w"]) is np.ndarray
    assert converted["w"].tobytes() == values.tobytes()


def test_an_unregistered_library_is_refused_by_name_on_load(fake_library):
    from devpersist.arrays import unregister

    data = devpersist.dumps({"w": fake_library.WrappedArray(np.arange(3.0), "fake:0")})
    unregister("fakearr")
    with pytest.raises(devpersist.FormatError, match="unknown array namespace 'fakearr'"):
        devpersist.loads(data)


def test_device_objects_are_found_through_their_handlers():
    torch = pytest.importorskip("torch")
    xp = pytest.importorskip("array_api_strict")
    from devpersist.arrays import is_device_type, namespace_of_device

    assert is_device_type(torch.device) and is_device_type(xp.Device)
    assert not is_device_type(torch.Tensor) and not is_device_type(np.dtype)
    assert namespace_of_device(torch.device("cpu")) == ("torch", "cpu")
    assert namespace_of_device(xp.Device("device1")) == ("array_api_strict", "device1")
    assert namespace_of_device("cpu") is None


# --------------------------------------------------------------------------- the dtype table


def test_one_dtype_table_for_every_handler():
    from devpersist.arrays import registered_namespaces
    from devpersist.arrays._dtypes import STANDARD, STANDARD_CODES

    for code, name in STANDARD.items():  # the table agrees with numpy itself
        dtype = np.dtype(name)
        assert f"{dtype.kind}{dtype.itemsize}" == code
    for namespace in registered_namespaces():
        handler = handler_for_namespace(namespace)
        assert handler.dtypes <= STANDARD_CODES, namespace
        assert handler.accepts(np.dtype("f4")) and not handler.accepts(np.dtype("O"))
    assert not handler_for_namespace("array_api_strict").accepts(np.dtype("f2"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("float32", "float32"),
        ("bfloat16", "float32"),
        ("complex32", "complex64"),
        ("float8_e4m3fn", "uint8"),
    ],
)
def test_library_dtype_objects_have_a_numpy_stand_in(name, expected):
    from devpersist.arrays import numpy_stand_in

    assert numpy_stand_in(name) == np.dtype(expected)


def test_an_unknown_dtype_record_is_a_format_error():
    # a file's torch dtype record, loaded without torch arrays: an unknown name used to
    # escape as a KeyError
    from devpersist import _reconstructors
    from devpersist._devices import Placement

    with pytest.raises(devpersist.FormatError):
        _reconstructors.dtype(Placement(namespace="numpy"), "torch", "no_such_type")
