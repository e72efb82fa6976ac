"""The overlapped chunked pipeline: file reads and writes in a worker thread, staging
buffers for device arrays, memory-mapped torch tensors.

Device copies on CUDA are asynchronous: a copy issued into a staging buffer lands later,
and a buffer refilled before its copy is done corrupts the data silently. Without a GPU,
``DelayedCopier`` plays that part: each copy runs in a thread after a short sleep, and
``wait`` joins it. A pipeline that yields a chunk before its copy landed, or refills a
buffer whose copy is still running, then returns wrong bytes, which the bit-for-bit
comparisons catch. The same tests run on CUDA (marked ``gpu``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
import pytest
import xxhash

import devpersist
from devpersist import _pipeline
from devpersist._pipeline import Worker, read_hashed, read_staged, write_hashed


def _file_reader(path: Any) -> Any:
    f = open(path, "rb")

    def readinto(offset: int, out: memoryview) -> None:
        f.seek(offset)
        view = out.cast("B")
        got = 0
        while got < view.nbytes:
            n = f.readinto(view[got:])
            assert n
            got += n

    return f, readinto


@pytest.fixture
def data_file(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 10_000 + 37, dtype=np.uint8).tobytes()
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    f, readinto = _file_reader(path)
    yield data, readinto
    f.close()


@pytest.fixture
def small_pipeline(monkeypatch):
    """Overlap every move through an enabled worker, in small chunks, even on one core."""
    monkeypatch.setattr(_pipeline, "PIPELINE_BYTES", 1)
    monkeypatch.setattr(_pipeline, "READ_CHUNK", 1000)
    monkeypatch.setattr(_pipeline, "SERIAL_CHUNK", 300)
    monkeypatch.setattr(_pipeline, "MIN_CORES", 1)
    monkeypatch.setattr(_pipeline, "idle_cores", lambda: 64.0)  # whatever else runs


@pytest.fixture
def serial_pipeline(monkeypatch):
    """Never overlap: every move in turn, in small pieces."""
    monkeypatch.setattr(_pipeline, "PIPELINE_BYTES", 1 << 62)
    monkeypatch.setattr(_pipeline, "SERIAL_CHUNK", 300)


@pytest.fixture(params=["small_pipeline", "serial_pipeline"], ids=["overlap", "serial"])
def either_pipeline(request):
    """Each of the two ways a move may go."""
    return request.getfixturevalue(request.param)


class NoWorker(Worker):
    """A worker that must not be used."""

    def submit(self, fn: Any, *args: Any) -> Any:
        raise AssertionError("the worker was used")


class DelayedCopier:
    """An asynchronous copy engine: each copy lands in a thread after ``delay`` seconds."""

    def __init__(self, delay: float = 0.002) -> None:
        self.delay = delay
        self.issued = 0
        self.waited = 0

    def copy(self, dst: Any, src: Any) -> Any:
        def run() -> None:
            time.sleep(self.delay)
            dst.copy_(src) if hasattr(dst, "copy_") else dst.__setitem__(slice(None), src)

        thread = threading.Thread(target=run)
        thread.start()
        self.issued += 1
        return thread

    def wait(self, token: Any) -> None:
        if token is not None:
            token.join()
            self.waited += 1


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000, 10_020])
@pytest.mark.parametrize("enabled", [True, False])
def test_read_hashed_reads_and_digests_every_byte(data_file, small_pipeline, size, enabled):
    data, readinto = data_file
    out = bytearray(size)
    with Worker(enabled) as worker:
        digest = read_hashed(readinto, 17, memoryview(out), worker, chunk=1000)
    assert bytes(out) == data[17 : 17 + size]
    assert digest == xxhash.xxh3_64_intdigest(data[17 : 17 + size])


@pytest.mark.parametrize("size", [0, 1, 299, 300, 301, 5000, 10_020])
def test_serial_read_hashed_reads_each_piece_then_hashes_it(data_file, serial_pipeline, size):
    data, readinto = data_file
    out = bytearray(size)
    calls = []

    def recording(offset: int, view: memoryview) -> None:
        calls.append((offset, view.nbytes, threading.current_thread().name))
        readinto(offset, view)

    digest = read_hashed(recording, 17, memoryview(out), NoWorker())
    assert bytes(out) == data[17 : 17 + size]
    assert digest == xxhash.xxh3_64_intdigest(data[17 : 17 + size])
    pieces = [(17 + s, min(300, size - s)) for s in range(0, size, 300)] or [(17, 0)]
    assert [(o, n) for o, n, _ in calls] == pieces
    assert {t for _, _, t in calls} == {threading.current_thread().name}


def test_overlapped_read_hashed_waits_for_each_read_before_hashing(data_file, small_pipeline):
    """The worker's reads are slow: hashing a chunk before its read is done would hash
    zeros, and the digest would be wrong."""
    data, readinto = data_file
    threads = []

    def slow(offset: int, view: memoryview) -> None:
        threads.append(threading.current_thread().name)
        time.sleep(0.005)
        readinto(offset, view)

    out = bytearray(5000)
    with Worker() as worker:
        digest = read_hashed(slow, 0, memoryview(out), worker, chunk=1000)
    assert digest == xxhash.xxh3_64_intdigest(data[:5000])
    assert bytes(out) == data[:5000]
    assert len(threads) == 5 and all(t.startswith("devpersist-io") for t in threads[1:])


@pytest.mark.parametrize("cores, load, size, enabled, pays", [
    (2, 0.0, 8 * 2**20, True, True),
    (16, 3.5, 2**30, True, True),
    (2, 0.9, 2**30, True, True),
    (1, 0.0, 2**30, True, False),  # no core for the worker: it would only take turns
    (2, 1.5, 2**30, True, False),  # other work keeps the cores busy
    (2, 0.0, 8 * 2**20 - 1, True, False),  # small: the hand-off costs more than it hides
    (2, 0.0, 2**30, False, False),  # a buffer: copying holds the GIL
])  # fmt: skip
def test_overlap_pays_only_with_an_idle_core_and_a_large_move(monkeypatch, cores, load, size,
                                                              enabled, pays):  # fmt: skip
    monkeypatch.setattr(_pipeline, "PIPELINE_BYTES", 8 * 2**20)
    monkeypatch.setattr(_pipeline, "usable_cores", lambda: cores)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert _pipeline.overlap_pays(size, Worker(enabled)) is pays


def test_one_core_reads_and_writes_in_turn(data_file, monkeypatch):
    monkeypatch.setattr(_pipeline, "PIPELINE_BYTES", 1)
    monkeypatch.setattr(_pipeline, "SERIAL_CHUNK", 300)
    monkeypatch.setattr(_pipeline, "usable_cores", lambda: 1)
    data, readinto = data_file
    out = bytearray(5000)
    assert read_hashed(readinto, 0, memoryview(out), NoWorker()) == xxhash.xxh3_64_intdigest(
        data[:5000]
    )
    parts: list[bytes] = []
    hasher = xxhash.xxh3_64()
    write_hashed(lambda b: parts.append(bytes(b)), data[:5000], hasher, NoWorker())
    assert b"".join(parts) == data[:5000] and hasher.intdigest() == xxhash.xxh3_64_intdigest(
        data[:5000]
    )
    chunks = list(_pipeline.staged_reads(
        readinto, 0, 5000, [memoryview(bytearray(1000)) for _ in range(2)], NoWorker(),
        xxhash.xxh3_64(),
    ))  # fmt: skip
    assert [start for start, _, _ in chunks] == list(range(0, 5000, 1000))


def _address(view: memoryview) -> int:
    return np.frombuffer(view, np.uint8).ctypes.data


def _placed(nbytes: int, at: int) -> memoryview:
    """A writable ``nbytes`` view whose address is ``at`` modulo 4096."""
    view = memoryview(bytearray(nbytes + 8192))
    start = (at - _address(view)) % 4096
    return view[start : start + nbytes]


@pytest.mark.parametrize("offset, at, short", [
    (0, 16, True),  # a numpy array's start at a page-aligned file offset: the slow case
    (4096 * 3, 1, True),
    (64, 127, True),
    (0, 0, False),
    (0, 64, False),
    (128, 16, False),  # the file position is the one ahead
    (16, 0, False),
])  # fmt: skip
def test_short_distance_is_a_destination_just_past_the_file_position(offset, at, short):
    assert _pipeline.short_distance(_placed(1000, at), offset) is short


@pytest.mark.parametrize("size", [300, 301, 5000, 9000])
@pytest.mark.parametrize("offset", [0, 64, 4096 + 192])
def test_short_distance_reads_go_through_a_placed_bounce_buffer(data_file, either_pipeline,
                                                                monkeypatch, size, offset):  # fmt: skip
    data, readinto = data_file
    data = data + data  # room for the offsets
    monkeypatch.setattr(_pipeline, "BOUNCE_MIN_BYTES", 1)
    seen = []

    def placed_reads(pos: int, view: memoryview) -> None:
        seen.append((pos, (_address(view) - pos) % 4096, view.nbytes))
        view[:] = data[pos : pos + view.nbytes]

    out = _placed(size, offset + 16)
    with Worker() as worker:
        digest = read_hashed(placed_reads, offset, out, worker)
    assert bytes(out) == data[offset : offset + size]
    assert digest == xxhash.xxh3_64_intdigest(data[offset : offset + size])
    assert {d for _, d, _ in seen} == {0}  # every read lands as placed as the file
    assert [p for p, _, _ in seen] == list(range(offset, offset + size, min(300, size)))


def test_reads_from_a_buffer_or_at_a_fine_distance_go_straight_in(data_file, monkeypatch):
    data, readinto = data_file
    monkeypatch.setattr(_pipeline, "BOUNCE_MIN_BYTES", 1)
    targets = []

    def straight(pos: int, view: memoryview) -> None:
        targets.append(_address(view))
        readinto(pos, view)

    out = _placed(5000, 128)
    read_hashed(straight, 0, out, Worker())  # 128 bytes ahead: fine
    read_hashed(straight, 0, _placed(5000, 16), Worker(enabled=False))  # a buffer source
    assert targets[0] == _address(out) and len(targets) >= 2
    assert bytes(out) == data[:5000]


def test_usable_cores_follows_the_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert _pipeline.usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("size", [1, 64, 100, 999, 10_037])
@pytest.mark.parametrize("slots", [2, 3])
def test_read_staged_waits_before_refilling(data_file, either_pipeline, size, slots):
    data, readinto = data_file
    out = np.zeros(size, np.uint8)
    buffers = [np.full(64, 0xEE, np.uint8) for _ in range(slots)]
    copier = DelayedCopier()

    def consume(start: int, slot: int, n: int) -> Any:
        return copier.copy(out[start : start + n], buffers[slot][:n])

    with Worker() as worker:
        digest = read_staged(
            readinto, 0, size, [b.data for b in buffers], consume, copier.wait, worker
        )
    assert out.tobytes() == data[:size]
    assert digest == xxhash.xxh3_64_intdigest(data[:size])
    assert copier.issued == copier.waited == -(-size // 64)  # every copy waited on


def test_read_staged_waits_for_every_copy_when_a_read_fails(data_file):
    data, readinto = data_file
    copier = DelayedCopier(delay=0.02)
    calls = []

    def failing(offset: int, out: memoryview) -> None:
        calls.append(offset)
        if len(calls) == 3:
            raise OSError("disk on fire")
        readinto(offset, out)

    buffers = [bytearray(64), bytearray(64)]
    out = np.zeros(1000, np.uint8)

    def consume(start: int, slot: int, n: int) -> Any:
        return copier.copy(out[start : start + n], np.frombuffer(buffers[slot], np.uint8)[:n])

    with Worker() as worker, pytest.raises(OSError, match="fire"):
        read_staged(
            failing, 0, 1000, [memoryview(b) for b in buffers], consume, copier.wait, worker
        )
    assert copier.issued == copier.waited  # nothing left copying out of freed buffers


def test_read_staged_rejects_a_single_buffer():
    with pytest.raises(ValueError, match="two or more"):
        read_staged(lambda o, v: None, 0, 10, [memoryview(bytearray(8))], None, None, Worker())


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("size", [0, 1, 299, 300, 301, 5000])
def test_serial_write_hashed_hashes_each_piece_then_writes_it(serial_pipeline, size):
    chunk = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)
    events: list[tuple[str, bytes]] = []

    class Recorder:
        def update(self, data: Any) -> None:
            events.append(("hash", bytes(data)))

    def write(data: Any) -> None:
        assert threading.current_thread() is threading.main_thread()
        events.append(("write", bytes(data)))

    assert write_hashed(write, chunk.data, Recorder(), NoWorker()) == size
    pieces = [chunk[s : s + 300].tobytes() for s in range(0, size, 300)] or [b""]
    assert events == [(op, p) for p in pieces for op in ("hash", "write")]


def test_write_hashed_overlaps_and_finishes_before_returning(tmp_path, small_pipeline):
    chunk = np.random.default_rng(1).integers(0, 256, 3_000_000, dtype=np.uint8)
    finished = []

    class SlowFile:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def write(self, data: Any) -> None:
            time.sleep(0.01)
            self.parts.append(bytes(data))
            finished.append(threading.current_thread().name)

    f, hasher = SlowFile(), xxhash.xxh3_64()
    with Worker() as worker:
        assert write_hashed(f.write, chunk.data, hasher, worker) == chunk.nbytes
    assert finished and finished[0].startswith("devpersist-io")  # written by the worker
    assert b"".join(f.parts) == chunk.tobytes()
    assert hasher.intdigest() == xxhash.xxh3_64_intdigest(chunk)


def test_write_error_in_the_worker_reaches_the_caller(tmp_path, small_pipeline):
    class Full:
        def write(self, data: Any) -> None:
            if memoryview(data).nbytes > 1000:  # the array's chunk, in the worker
                raise OSError("No space left on device")

        def flush(self) -> None:
            pass

    with pytest.raises(OSError, match="No space"):
        devpersist.dump({"a": np.arange(100_000.0)}, Full())


def test_pipelined_file_round_trip_is_exact(tmp_path, small_pipeline):
    payload = {
        "big": np.random.default_rng(2).standard_normal((300, 101)),
        "f": np.asfortranarray(np.arange(12_000, dtype=np.int32).reshape(100, 120)),
        "tiny": np.arange(3),
    }
    path = tmp_path / "p.dvp"
    devpersist.dump(payload, path)
    assert path.read_bytes() == devpersist.dumps(payload)  # the same bytes either way
    loaded = devpersist.load(path)
    for key, value in payload.items():
        assert loaded[key].tobytes(order="A") == value.tobytes(order="A"), key
    data = bytearray(path.read_bytes())
    entry = devpersist.info(bytes(data))["arrays"][0]
    data[entry["offset"] + entry["length"] - 5] ^= 0x10  # in the last chunk
    path.write_bytes(bytes(data))
    with pytest.raises(devpersist.IntegrityError, match="checksum"):
        devpersist.load(path)


# --------------------------------------------------------------------------- torch


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def staged_torch(monkeypatch, torch):
    """Stream CPU tensors through small staging buffers with delayed copies, as CUDA
    tensors are (the CPU path normally reads straight into the tensor)."""
    from devpersist.arrays import _torch

    copier = DelayedCopier()
    monkeypatch.setattr(_torch, "STREAMED", frozenset({"cpu"}))
    monkeypatch.setattr(_torch, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(_torch, "STAGE_BYTES", 256)
    monkeypatch.setattr(_torch, "_copier", lambda torch, device: copier)
    return copier


def _tensors(torch: Any) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    return {
        "f32": torch.randn(37, 11, generator=gen),  # 1628 bytes: 7 chunks, the last partial
        "bf16": torch.randn(300, generator=gen).to(torch.bfloat16),
        "bool": torch.rand(1000, generator=gen) > 0.5,
        "c64": torch.randn(40, dtype=torch.complex64, generator=gen),
        "param": torch.nn.Parameter(torch.randn(5, 70, generator=gen)),
        "frozen": torch.randn(256, generator=gen).requires_grad_(True),
        "exact": torch.arange(64, dtype=torch.float32),  # exactly one chunk
        "view": torch.randn(30, 20, generator=gen).t(),
    }


def _assert_same(torch: Any, got: Any, want: Any, key: str) -> None:
    """Type, dtype, shape, device, requires_grad and every byte."""
    assert type(got) is type(want), key
    assert (got.dtype, got.shape, got.device) == (want.dtype, want.shape, want.device), key
    assert got.requires_grad == want.requires_grad, key
    a = got.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    b = want.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    assert bytes(a.numpy()) == bytes(b.numpy()), f"{key}: bytes differ"


def test_staged_save_yields_each_chunk_after_its_copy(torch, staged_torch):
    from devpersist.arrays._torch import host_chunks

    t = torch.randn(1000, dtype=torch.float64)
    chunks = [bytes(c) for c in host_chunks(t, chunk_bytes=800, stage=True)]
    assert [len(c) for c in chunks] == [800] * 10
    assert b"".join(chunks) == bytes(t.numpy())
    assert staged_torch.issued == staged_torch.waited == 10


def test_staged_save_stopped_early_lets_the_pending_copy_land(torch, staged_torch):
    from devpersist.arrays._torch import host_chunks

    gen = host_chunks(torch.randn(1000, dtype=torch.float64), chunk_bytes=800, stage=True)
    next(gen)
    gen.close()
    assert staged_torch.issued == 2 and staged_torch.waited == 2


def test_streamed_load_builds_tensors_without_a_host_copy(tmp_path, torch, staged_torch,
                                                          small_pipeline, monkeypatch):  # fmt: skip
    from devpersist import _decode

    payload = _tensors(torch)
    path = tmp_path / "t.dvp"
    devpersist.dump(payload, path)
    staged_torch.issued = staged_torch.waited = 0

    def no_host_copy(entry: Any) -> Any:
        raise AssertionError(f"{entry.get('path')} was read into a host array")

    monkeypatch.setattr(_decode, "empty_host", no_host_copy)
    for loaded in (devpersist.load(path), devpersist.loads(path.read_bytes())):
        for key, value in payload.items():
            _assert_same(torch, loaded[key], value, key)
    assert staged_torch.issued == staged_torch.waited > 2 * len(payload)


def test_streamed_load_detects_corruption_in_any_chunk(tmp_path, torch, staged_torch):
    payload = {"t": torch.randn(37, 11)}
    path = tmp_path / "t.dvp"
    devpersist.dump(payload, path)
    meta = devpersist.info(path)
    entry = meta["arrays"][0]  # 1,628 bytes: packed (format 2), its offset in the pack
    start = entry["offset"] + (meta["pack"]["offset"] if entry.get("packed") else 0)
    for where in (0, 700, entry["length"] - 1):
        data = bytearray(devpersist.dumps(payload))
        data[start + where] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(devpersist.IntegrityError, match="checksum"):
            devpersist.load(path)
    assert staged_torch.issued == staged_torch.waited


def test_small_and_host_tensors_are_not_streamed(tmp_path, torch):
    from devpersist.arrays import handler_for_namespace

    handler = handler_for_namespace("torch")
    entry = devpersist.info(devpersist.dumps({"t": torch.randn(4)}))["arrays"][0]
    assert handler.decode_streamed(entry, "cpu", None) is None  # straight into the tensor
    assert handler.decode_streamed(entry, "cuda:0", None) is None  # small: one copy


def _mapped_ranges(path: Any) -> list[tuple[int, int]]:
    """The address ranges where this process maps ``path`` (from /proc/self/maps)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() == str(path):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((lo, hi))
    return ranges


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc (Linux)")
def test_mmap_builds_cpu_tensors_over_the_file_copy_on_write(tmp_path, torch):
    payload = _tensors(torch)
    path = tmp_path / "t.dvp"
    devpersist.dump(payload, path)
    before = path.read_bytes()
    mapped = devpersist.load(path, mmap=True)
    ranges = _mapped_ranges(path)
    assert ranges
    for key, value in payload.items():
        _assert_same(torch, mapped[key], value, key)
        ptr = mapped[key].data_ptr()
        assert any(lo <= ptr < hi for lo, hi in ranges), f"{key} is not backed by the file"
    with torch.no_grad():
        mapped["f32"].add_(1.0)  # a private copy of the touched pages
    assert torch.equal(mapped["f32"], payload["f32"] + 1.0)
    assert path.read_bytes() == before
    assert torch.equal(devpersist.load(path)["f32"], payload["f32"])


def test_mmap_does_not_map_what_must_be_decoded(tmp_path, torch):
    path = tmp_path / "t.dvp"
    devpersist.dump({"t": torch.randn(1000)}, path, precision="bfloat16")
    with pytest.warns(devpersist.NotMappedWarning, match="reduced precision"):
        loaded = devpersist.load(path, mmap=True)["t"]
    assert loaded.dtype == torch.float32  # widened: a fresh tensor, not a view
    ranges = _mapped_ranges(path) if os.path.exists("/proc/self/maps") else []
    assert not any(lo <= loaded.data_ptr() < hi for lo, hi in ranges)


# --------------------------------------------------------------------------- CUDA


def _cuda(torch: Any) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")


@pytest.mark.gpu
def test_cuda_streamed_round_trip_in_many_chunks(tmp_path, torch, monkeypatch, small_pipeline):
    from devpersist import _decode
    from devpersist.arrays import _torch

    _cuda(torch)
    monkeypatch.setattr(_torch, "STAGE_BYTES", 4096)
    monkeypatch.setattr(_torch, "STREAM_MIN_BYTES", 0)
    payload = {}
    for key, value in _tensors(torch).items():
        on_gpu = value.detach().cuda().requires_grad_(value.requires_grad)
        payload[key] = torch.nn.Parameter(on_gpu) if key == "param" else on_gpu
    payload["big"] = torch.randn(1 << 20, device="cuda")  # 4 MiB: 1024 chunks
    path = tmp_path / "cuda.dvp"
    devpersist.dump(payload, path)

    def no_host_copy(entry: Any) -> Any:
        raise AssertionError(f"{entry.get('path')} was read into a host array")

    monkeypatch.setattr(_decode, "empty_host", no_host_copy)
    loaded = devpersist.load(path)
    for key, value in payload.items():
        _assert_same(torch, loaded[key], value, key)


@pytest.mark.gpu
def test_cuda_staging_buffers_are_pinned(torch):
    from devpersist.arrays._torch import _staging_buffer

    _cuda(torch)
    assert _staging_buffer(torch, 1 << 20, torch.device("cuda:0")).is_pinned()
