"""Files of other formats, and values that are not bytes, are named as such."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _guard import Guard
from hostile_cases.foreign import FOREIGN

import devpersist
from devpersist import DevpersistError, NotDevpersistError


@pytest.mark.parametrize(
    "value",
    ["str", None, 123, [1, 2], io.BytesIO(b"x")],
    ids=["str", "None", "int", "list", "file-object"],
)
def test_loads_takes_bytes_only(value: Any):
    with pytest.raises(TypeError) as info:
        devpersist.loads(value)
    assert not isinstance(info.value, DevpersistError)


@pytest.mark.parametrize("via", ["bytes", "path", "info", "get_untrusted_types"])
@pytest.mark.parametrize(
    ("make", "says"), [(m, s) for _, m, s in FOREIGN], ids=[i for i, _, _ in FOREIGN]
)
def test_foreign_files_are_named(make: Callable[[], bytes], says: str, via: str, guard: Guard):
    data = make()
    path = guard.dir / "foreign.bin"
    path.write_bytes(data)
    call = {
        "bytes": lambda: devpersist.loads(data),
        "path": lambda: devpersist.load(path),
        "info": lambda: devpersist.info(path),
        "get_untrusted_types": lambda: devpersist.get_untrusted_types(path),
    }[via]
    with pytest.raises(NotDevpersistError, match="not a devpersist file") as info:
        guard.call(call)
    assert says in str(info.value)
    guard.verify()


def test_joblib_file_on_disk_is_named(guard: Guard):
    joblib = pytest.importorskip("joblib")
    path = guard.dir / "model.joblib"
    joblib.dump({"a": np.arange(3.0)}, path)
    with pytest.raises(NotDevpersistError, match="pickle"):
        guard.call(devpersist.load, path)
    guard.verify()
