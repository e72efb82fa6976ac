"""Save and load of models whose arrays live on a device, against peers and raw I/O.

For each size, a dict of float32 tensors on ``--device`` (plus a small fitted estimator)
is saved and loaded back to the same device by devpersist (uncompressed, and with
``compress="zstd"``: level 3 on all host cores, its save throughput on this host), pickle,
joblib, torch.save and safetensors, and the same bytes are written with fsync and read
back then copied to the device, as the hardware's reference. Saves of devpersist to a
path fsync (atomic save); the others are given an fsync too, so every save row pays for
durability. The tensors are ``torch.rand`` (uniform in [0, 1)): zstd shrinks them a
little, so its row measures compression work more than saved I/O.
Every load's data is touched (summed) inside the timing, so lazy memory-mapped loads
count once read. Reported: GB/s, the ratio to the raw reference, and the process's peak
host RSS (``VmHWM``, reset before each operation).

    python benchmarks/bench_gpu.py                      # cuda, 0.25, 2 and 8 GiB
    python benchmarks/bench_gpu.py --device cpu --sizes 0.05   # the same code on the CPU

Results with a GPU have not been recorded yet: run it on a lent device and put the
output in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
from _util import page_aligned_empty

import devpersist


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak() -> int:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _rss("VmRSS")
    except OSError:
        return 0


def _rss(field: str = "VmHWM") -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _fsync_write(path: str, write: Callable[[Any], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _touch(loaded: Any) -> None:
    values = loaded.values() if isinstance(loaded, dict) else [loaded]
    for t in values:
        if isinstance(t, torch.Tensor):
            t.sum()


def make_model(gib: float, device: str) -> dict[str, Any]:
    n = int(gib * 2**30 / 4)
    chunk = 2**26  # 256 MiB tensors, like the layers of a large model
    tensors = {}
    for i, start in enumerate(range(0, n, chunk)):
        tensors[f"w{i}"] = torch.rand(min(chunk, n - start), device=device)
    return tensors


def tools(device: str, folder: str) -> dict[str, tuple[Callable[[Any], None], Callable[[], Any]]]:
    path = os.path.join(folder, "model")

    def raw_save(model: dict[str, Any]) -> None:
        def write(f: Any) -> None:
            for t in model.values():
                f.write(memoryview(t.cpu().numpy()).cast("B"))

        _fsync_write(path, write)

    def raw_load() -> Any:
        import numpy as np

        # page-aligned: np.fromfile's buffer would make the kernel's copy a slow
        # short-distance one (see _util.page_aligned_empty)
        out = page_aligned_empty(os.path.getsize(path))
        with open(path, "rb", buffering=0) as f:
            view, done = memoryview(out), 0
            while done < out.nbytes:
                n = f.readinto(view[done:])
                if not n:
                    raise OSError(f"{path} is shorter than expected")
                done += n
        return torch.from_numpy(out.view(np.float32)).to(device)

    def safetensors_pair() -> tuple[Callable[[Any], None], Callable[[], Any]]:
        from safetensors.torch import load_file, save_file

        def save(model: dict[str, Any]) -> None:
            save_file(model, path)
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        return save, lambda: load_file(path, device=device)

    def joblib_pair() -> tuple[Callable[[Any], None], Callable[[], Any]]:
        import joblib

        return (lambda m: _fsync_write(path, lambda f: joblib.dump(m, f))), (
            lambda: joblib.load(path)
        )

    table = {
        "raw write+fsync / read+copy": (raw_save, raw_load),
        "devpersist (path, atomic)": (
            lambda m: devpersist.dump(m, path + ".dvp"),
            lambda: devpersist.load(path + ".dvp"),
        ),
        # zstd (level 3, all cores) on the host: the throughput of a compressed save
        "devpersist (zstd)": (
            lambda m: devpersist.dump(m, path + ".zst.dvp", compress="zstd"),
            lambda: devpersist.load(path + ".zst.dvp"),
        ),
        "pickle": (
            lambda m: _fsync_write(path, lambda f: pickle.dump(m, f, protocol=5)),
            lambda: pickle.load(open(path, "rb")),
        ),
        "torch.save": (
            lambda m: _fsync_write(path, lambda f: torch.save(m, f)),
            lambda: torch.load(path, map_location=device),
        ),
    }
    for name, make in (("safetensors", safetensors_pair), ("joblib", joblib_pair)):
        try:
            table[name] = make()
        except ImportError:
            pass
    return table


def bench(gib: float, device: str, repeats: int) -> list[tuple[str, float, float, int, int]]:
    model = make_model(gib, device)
    nbytes = sum(t.numel() * 4 for t in model.values())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (save, load) in tools(device, folder).items():
            saves, loads, save_peak, load_peak = [], [], 0, 0
            for _ in range(repeats):
                base = _reset_peak()
                _sync(device)
                t0 = time.perf_counter()
                save(model)
                saves.append(time.perf_counter() - t0)
                save_peak = max(save_peak, _rss() - base)
                base = _reset_peak()
                t0 = time.perf_counter()
                loaded = load()
                _touch(loaded)  # lazy (memory-mapped) loads count once the data is read
                _sync(device)
                loads.append(time.perf_counter() - t0)
                load_peak = max(load_peak, _rss() - base)
                del loaded
            rows.append(
                (name, nbytes / min(saves) / 1e9, nbytes / min(loads) / 1e9, save_peak, load_peak)
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.25, 2.0, 8.0], help="GiB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from devpersist._environment import cpu_name

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    print(f"# devpersist device benchmark on {args.device} ({name})\n")
    print(
        f"torch {torch.__version__}, devpersist {devpersist.__version__}, Python {platform.python_version()}\n"
    )
    for gib in args.sizes:
        rows = bench(gib, args.device, args.repeats)
        raw_save, raw_load = rows[0][1], rows[0][2]
        print(f"## {gib} GiB of float32 on {args.device}\n")
        print(
            "| tool | save GB/s | vs raw | load GB/s | vs raw | save peak RSS MiB | load peak RSS MiB |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for tool, save, load, save_peak, load_peak in rows:
            print(f"| {tool} | {save:.2f} | {save / raw_save:.2f}x | {load:.2f} | {load / raw_load:.2f}x"
                  f" | {save_peak / 2**20:.0f} | {load_peak / 2**20:.0f} |")  # fmt: skip
        print()


if __name__ == "__main__":
    main()
