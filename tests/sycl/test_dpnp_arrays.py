"""dpnp arrays on a real SYCL device: identity, USM type, staging, placement rules."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from _repack import edit_manifest

import devpersist
from devpersist import DeviceError, FormatError
from devpersist.arrays import _dpnp

USM_TYPES = ("device", "shared", "host")


def _payload(dpnp: Any, usm_type: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    base = dpnp.asarray(rng.random((6, 8)), usm_type=usm_type)
    return {
        "f8": base,
        "view": base[::2, 1::3],  # saved as its values
        "f4": dpnp.asarray(rng.random(17).astype(np.float32), usm_type=usm_type),
        "i8": dpnp.asarray(rng.integers(-50, 50, (3, 4)), usm_type=usm_type),
        "bool": dpnp.asarray(rng.random(9) > 0.5, usm_type=usm_type),
        "c16": dpnp.asarray(rng.random(5) + 1j * rng.random(5), usm_type=usm_type),
        "scalar": dpnp.asarray(np.float64(2.5), usm_type=usm_type),
        "empty": dpnp.asarray(np.zeros((0, 3)), usm_type=usm_type),
    }


def _same(loaded: Any, original: Any, dpnp: Any) -> None:
    assert type(loaded) is type(original)
    assert loaded.dtype == original.dtype and loaded.shape == original.shape
    assert loaded.sycl_device.filter_string == original.sycl_device.filter_string
    assert loaded.usm_type == original.usm_type
    assert dpnp.asnumpy(loaded).tobytes() == dpnp.asnumpy(original).tobytes()


@pytest.mark.parametrize("usm_type", USM_TYPES)
def test_round_trip_keeps_device_and_usm_type(sycl, usm_type):
    payload = _payload(sycl, usm_type)
    data = devpersist.dumps(payload)
    info = devpersist.info(data)
    device = payload["f8"].sycl_device
    assert {a["device"] for a in info["arrays"]} == {device.filter_string}
    assert {a["meta"]["usm_type"] for a in info["arrays"]} == {usm_type}
    assert info["environment"]["devices"] == {device.filter_string: device.name}
    loaded = devpersist.loads(data)
    for key, value in payload.items():
        _same(loaded[key], value, sycl)


def test_device_cpu_is_the_host_sycl_device(sycl):
    import dpctl

    payload = _payload(sycl, "shared")
    loaded = devpersist.loads(devpersist.dumps(payload), device="cpu")
    host = dpctl.SyclDevice("cpu").filter_string
    for key, value in payload.items():
        assert loaded[key].sycl_device.filter_string == host
        assert sycl.asnumpy(loaded[key]).tobytes() == sycl.asnumpy(value).tobytes()


def test_namespace_numpy_gives_numpy_arrays(sycl):
    payload = _payload(sycl, "device")
    loaded = devpersist.loads(devpersist.dumps(payload), namespace="numpy")
    for key, value in payload.items():
        assert type(loaded[key]) is np.ndarray
        assert loaded[key].tobytes() == sycl.asnumpy(value).tobytes()


def test_large_arrays_move_through_bounded_staging_buffers(sycl, monkeypatch):
    """Saving copies one chunk at a time to the host; loading fills the device array
    chunk by chunk from the file (never a host copy of the whole array)."""
    monkeypatch.setattr(_dpnp, "STAGE_BYTES", 4096)
    monkeypatch.setattr(_dpnp, "STREAM_MIN_BYTES", 1)
    big = sycl.asarray(np.random.default_rng(1).random((100, 37)), usm_type="shared")
    copies: list[int] = []
    asnumpy = sycl.asnumpy

    def counted(array: Any, *args: Any, **kwargs: Any) -> Any:
        host = asnumpy(array, *args, **kwargs)
        copies.append(host.nbytes)
        return host

    monkeypatch.setattr(sycl, "asnumpy", counted)
    data = devpersist.dumps({"big": big})
    assert len(copies) == -(-big.nbytes // 4096) and max(copies) <= 4096
    monkeypatch.setattr(sycl, "asnumpy", asnumpy)

    def no_host_copy(*args: Any) -> Any:
        raise AssertionError("decode() made a host copy of the whole array")

    monkeypatch.setattr(_dpnp.DpnpHandler, "decode", no_host_copy)
    loaded = devpersist.loads(data)["big"]
    _same(loaded, big, sycl)


def _elsewhere(data: bytes, device: str = "level_zero:gpu:0") -> bytes:
    """The file as if its dpnp arrays had been saved on ``device``."""

    def edit(manifest: dict[str, Any]) -> None:
        for entry in manifest["arrays"]:
            if entry["namespace"] == "dpnp":
                entry["device"] = device

    return edit_manifest(data, edit)


def test_missing_saved_device_falls_back_to_the_host_sycl_device(sycl):
    payload = _payload(sycl, "device")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = devpersist.loads(_elsewhere(devpersist.dumps(payload)))
    assert [w.category.__name__ for w in caught] == ["DeviceFallbackWarning"]
    assert "level_zero:gpu:0" in str(caught[0].message)
    for key, value in payload.items():
        _same(loaded[key], value, sycl)  # on the host SYCL device, where they were made


def test_missing_saved_device_with_fallback_raise_builds_nothing(sycl, monkeypatch):
    data = _elsewhere(devpersist.dumps(_payload(sycl, "device")))

    def built(*args: Any) -> Any:
        raise AssertionError("an array was built before the placement was refused")

    monkeypatch.setattr(_dpnp.DpnpHandler, "decode", built)
    monkeypatch.setattr(_dpnp.DpnpHandler, "decode_streamed", built)
    with pytest.raises(DeviceError, match="level_zero:gpu:0"):
        devpersist.loads(data, fallback="raise")


def test_unknown_usm_type_is_a_format_error_naming_the_array(sycl):
    data = devpersist.dumps({"weights": sycl.arange(4.0)})

    def edit(manifest: dict[str, Any]) -> None:
        manifest["arrays"][0]["meta"]["usm_type"] = "pinned"

    with pytest.raises(FormatError, match=r"weights.*meta\.usm_type") as caught:
        devpersist.loads(edit_manifest(data, edit))
    assert "pinned" in str(caught.value)


def test_usm_type_the_device_cannot_allocate_is_a_device_error(sycl, monkeypatch):
    data = devpersist.dumps({"weights": sycl.asarray(np.arange(4.0), usm_type="shared")})
    real = _dpnp._sycl_device

    class NoSharedMemory:
        def __init__(self, device: Any) -> None:
            self._device = device

        def __getattr__(self, name: str) -> Any:
            if name == "has_aspect_usm_shared_allocations":
                return False
            return getattr(self._device, name)

    monkeypatch.setattr(_dpnp, "_sycl_device", lambda name: NoSharedMemory(real(name)))
    with pytest.raises(DeviceError, match=r"weights.*'shared'.*meta\.usm_type"):
        devpersist.loads(data)
