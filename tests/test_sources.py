"""Reading containers from streams: a pipe that stays open, back-to-back containers."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

import devpersist


class _Writer(threading.Thread):
    """Writes ``chunks`` into a pipe, then keeps the write end open until released: a
    reader that waited for end-of-file would block (the test's timeout catches it)."""

    def __init__(self, fd: int, chunks: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.fd, self.chunks = fd, chunks
        self.release = threading.Event()

    def run(self) -> None:
        with os.fdopen(self.fd, "wb", buffering=0) as f:
            for chunk in self.chunks:
                f.write(chunk)
            self.release.wait(30)


def _read_in_thread(fn, timeout: float = 20.0):
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the reader waited for the end of the stream"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def test_a_pipe_is_read_up_to_the_containers_end_and_no_further():
    first = {"a": np.arange(10), "big": np.arange(50_000.0)}  # pack and a blob
    second = {"b": np.arange(5, dtype="<i2"), "text": "second"}
    data1, data2 = devpersist.dumps(first), devpersist.dumps(second)
    r, w = os.pipe()
    # odd pieces: a container's end falls inside a piece, and a trailer across two
    stream = data1 + data2
    writer = _Writer(w, [stream[i : i + 4097] for i in range(0, len(stream), 4097)])
    writer.start()
    try:
        with os.fdopen(r, "rb") as f:
            assert not f.seekable()
            one = _read_in_thread(lambda: devpersist.load(f))
            two = _read_in_thread(lambda: devpersist.load(f))
    finally:
        writer.release.set()
    np.testing.assert_array_equal(one["a"], first["a"], strict=True)
    np.testing.assert_array_equal(one["big"], first["big"], strict=True)
    np.testing.assert_array_equal(two["b"], second["b"], strict=True)
    assert two["text"] == "second"


def test_an_end_magic_inside_array_bytes_does_not_end_the_container():
    fake = np.frombuffer(b"DVP1END\n" * 64, dtype=np.uint8).copy()  # in the pack
    data = devpersist.dumps({"fake": fake, "big": np.tile(fake, 200)})  # and in a blob
    r, w = os.pipe()
    writer = _Writer(w, [data, devpersist.dumps([1, 2])])
    writer.start()
    try:
        with os.fdopen(r, "rb") as f:
            out = _read_in_thread(lambda: devpersist.load(f))
            assert _read_in_thread(lambda: devpersist.load(f)) == [1, 2]
    finally:
        writer.release.set()
    np.testing.assert_array_equal(out["fake"], fake, strict=True)


class _NoPeek(io.RawIOBase):
    """A non-seekable stream without ``peek``: read to its end, one container."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def test_a_stream_without_peek_holds_one_container():
    data = devpersist.dumps({"x": np.arange(3)})
    out = devpersist.load(_NoPeek(data))
    np.testing.assert_array_equal(out["x"], np.arange(3), strict=True)
    with pytest.raises(devpersist.IntegrityError):
        devpersist.load(_NoPeek(data + data))  # two: the trailer does not end the stream


@pytest.mark.parametrize("cut", [5, 16, 100, -1])
def test_a_cut_stream_is_an_error_not_a_hang(cut):
    data = devpersist.dumps({"x": np.arange(3)})
    r, w = os.pipe()
    writer = _Writer(w, [data[:cut]])
    writer.start()
    with os.fdopen(r, "rb") as f:
        writer.release.set()  # the writer closes: end of stream inside the container
        with pytest.raises(devpersist.IntegrityError):
            devpersist.load(f)
