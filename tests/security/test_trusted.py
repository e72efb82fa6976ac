"""``trusted=`` admits exactly the names given, and nothing beside them runs."""

from __future__ import annotations

import os
import uuid

import _hostile as H
import numpy as np
import pytest
from _guard import Guard
from hostile_cases.build import touch

import devpersist
from devpersist import UntrustedTypeError


def _uuid_file() -> bytes:
    with pytest.warns(devpersist.UntrustedTypeWarning, match="uuid.UUID"):
        return devpersist.dumps({"id": uuid.UUID(int=7), "a": np.arange(3.0)})


def test_trusted_admits_exactly_the_names_given(guard: Guard):
    data = _uuid_file()
    with pytest.raises(UntrustedTypeError) as info:
        guard.load(data)
    assert info.value.untrusted == ["uuid.UUID"]
    for not_quite in (
        ["uuid"],
        ["uuid.UUI"],
        ["uuid.UUID.x"],
        ["UUID"],
        ["uuid.*"],
        [" uuid.UUID"],
        ["uuid.SafeUUID"],
    ):
        with pytest.raises(UntrustedTypeError):
            guard.load(data, trusted=not_quite)
    for spelling in (["uuid.UUID"], [uuid.UUID], "uuid.UUID", uuid.UUID, [("uuid", "UUID")]):
        loaded = guard.load(data, trusted=spelling)
        assert loaded["id"] == uuid.UUID(int=7)
    with pytest.raises(UntrustedTypeError):  # trust does not outlive the call
        guard.load(data)
    guard.verify()


def test_trusting_one_name_does_not_admit_a_payload_beside_it(guard: Guard):
    graph = H.stream(
        H.EMPTY_LIST,
        H.MARK,
        H.call(H.stack_global("uuid", "UUID"), H.text("0" * 32)),
        H.shell(touch(guard.canary)),
        H.integer(0),
        b"Q",
        H.APPENDS,
    )
    data = H.container(graph, [np.arange(3.0)])
    trusted = ["uuid.UUID", devpersist.dangerously_trust("os.getcwd", "os.system.x", "os")]
    for via in ("bytes", "path"):
        with pytest.raises(UntrustedTypeError) as info:
            guard.load(data, via=via, trusted=trusted)
        assert info.value.untrusted == ["os.system"]
    assert guard.call(devpersist.get_untrusted_types, data, trusted=["uuid.UUID"]) == ["os.system"]
    guard.verify()


def test_trusted_name_is_the_only_thing_that_runs(guard: Guard):
    """A trusted callable runs (that is what trust means) and nothing else does."""
    graph = H.stream(
        H.EMPTY_LIST, H.MARK, H.call(H.stack_global("os", "getcwd")), H.integer(0), b"Q", H.APPENDS
    )
    data = H.container(graph, [np.arange(3.0)])
    with pytest.raises(UntrustedTypeError):
        guard.load(data)
    with pytest.raises(devpersist.UnsafeTrustError):  # os.* is on the never list
        guard.load(data, trusted=["os.getcwd"])
    loaded = guard.load(data, trusted=[devpersist.dangerously_trust("os.getcwd")])
    assert loaded[0] == os.getcwd()
    guard.verify()


# --------------------------------------------------------------------------- sweeps
