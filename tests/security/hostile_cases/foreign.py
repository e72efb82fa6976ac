"""Never a fallback to plain pickle or to other loaders; foreign files a loader must name."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import _hostile as H
import numpy as np
import pytest

from devpersist import NotDevpersistError
from hostile_cases.build import Case, touch


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.pkl", pickle.dumps({"a": 1}))
    return buf.getvalue()


def pickle_payload(c: str) -> bytes:
    return H.stream(H.shell(touch(c)))


def _joblib_payload(compress: int) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        joblib = pytest.importorskip("joblib")

        class Payload:
            def __reduce__(self) -> Any:
                return os.system, (touch(c),)

        buf = io.BytesIO()
        joblib.dump(Payload(), buf, compress=compress)
        return buf.getvalue()

    return make


# 16. Never a fallback to plain pickle or to other loaders.
FOREIGN_CASES = [
    Case("plain-pickle-with-payload", pickle_payload, (NotDevpersistError,)),
    Case("joblib-file-with-payload", _joblib_payload(0), (NotDevpersistError,)),
    Case("compressed-joblib-file-with-payload", _joblib_payload(3), (NotDevpersistError,)),
    Case(
        "zip-holding-a-pickle-with-payload (torch.save layout)",
        lambda c: zip_of(pickle_payload(c)),
        (NotDevpersistError,),
    ),
]


def zip_of(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", data)
    return buf.getvalue()


def _joblib_bytes(compress: int) -> bytes:
    joblib = pytest.importorskip("joblib")
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(3.0)}, buf, compress=compress)
    return buf.getvalue()


def _random_bytes() -> bytes:
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return b"\x11" + data[1:]


def _safetensors_like() -> bytes:
    header = json.dumps({"a": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(24)


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    return buf.getvalue()


FOREIGN = [
    ("pickle-protocol-2", lambda: pickle.dumps({"a": 1}, protocol=2), "pickle"),
    ("pickle-protocol-4", lambda: pickle.dumps({"a": 1}, protocol=4), "pickle"),
    ("pickle-protocol-5", lambda: pickle.dumps({"a": 1}, protocol=5), "pickle"),
    ("pickle-protocol-0", lambda: pickle.dumps({"a": 1}, protocol=0), "not the devpersist magic"),
    ("joblib", lambda: _joblib_bytes(0), "pickle"),
    ("joblib-zlib", lambda: _joblib_bytes(3), "compressed joblib"),
    ("random-bytes", _random_bytes, "not the devpersist magic"),
    ("empty", lambda: b"", "empty"),
    ("zip", zip_bytes, "zip"),
    ("gzip", lambda: gzip.compress(b"x" * 100), "compressed"),
    ("zstd-magic", lambda: b"\x28\xb5\x2f\xfd" + bytes(60), "compressed"),
    ("safetensors", _safetensors_like, "safetensors"),
    ("npy", _npy, "not the devpersist magic"),
]
