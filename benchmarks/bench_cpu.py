#!/usr/bin/env python
"""CPU benchmark: devpersist against pickle, joblib and skops (and safetensors / torch
as raw-array references), side by side, in one run, on this machine.

    python benchmarks/bench_cpu.py            # full run, a few minutes
    python benchmarks/bench_cpu.py --quick    # smoke run, under a minute

Prints a markdown report on stdout (progress goes to stderr). Cases:

1. a small Ridge (fitted on 100x10): dumps + loads round trip in memory;
2. a RandomForestClassifier(n_estimators=50) fitted on 2000x20: the same;
3. a "large" model (a dict of float64 arrays, 256 MiB in all, plus a fitted Ridge):
   save to a file and load from it, as throughput;
4. peak RSS of saving and of loading case 3, each in a fresh subprocess;
5. memory-mapped and compressed: (a) ``load(mmap=True)`` of 2 GiB of float32 (numpy
   arrays, torch CPU tensors; ``torch.load(mmap=True)`` as a peer), then touching all the
   mapped data, against the page-cache read speed; (b) save and load throughput with
   ``compress="zstd" | "lz4" | "zlib"`` (and joblib's zlib and lz4) on 256 MiB of float32,
   random and compressible.

Needs: ``pip install -e ".[bench]"`` (joblib, skops, safetensors, psutil) and torch.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from _util import (
    GB,
    MiB,
    current_rss_bytes,
    fmt_ratio,
    fmt_us,
    load_average_line,
    log,
    machine_info,
    machine_markdown,
    md_table,
    median,
    page_aligned_empty,
    peak_rss_bytes,
    reset_peak_rss,
    time_once,
    time_per_op,
)

SEED = 0
N_LARGE_ARRAYS = 4
FULL = dict(
    small_repeat=7,
    small_min_s=0.2,
    large_mib=256,
    large_repeat=7,
    mmap_mib=2048,
    mmap_repeat=5,
    compress_mib=256,
    compress_repeat=3,
)
QUICK = dict(
    small_repeat=3,
    small_min_s=0.02,
    large_mib=32,
    large_repeat=2,
    mmap_mib=64,
    mmap_repeat=2,
    compress_mib=32,
    compress_repeat=2,
)


def _fresh(path: str) -> Callable[[], None]:
    """Before a timed save: remove the previous file and sync, so that no tool pays for
    another's dirty pages."""

    def before() -> None:
        if os.path.exists(path):
            os.remove(path)
        os.sync()

    return before


# --------------------------------------------------------------------------- objects


def make_ridge() -> tuple[Any, np.ndarray]:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(SEED)
    X, y = rng.random((100, 10)), rng.random(100)
    return Ridge().fit(X, y), X


def make_forest() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=2000, n_features=20, random_state=SEED)
    return RandomForestClassifier(n_estimators=50, random_state=SEED).fit(X, y), X


def make_large_arrays(size_mib: int) -> dict[str, np.ndarray]:
    """``size_mib`` MiB of float64 in ``N_LARGE_ARRAYS`` C-contiguous 2-d arrays."""
    per = size_mib * MiB // 8 // N_LARGE_ARRAYS
    rng = np.random.default_rng(SEED)
    return {f"w{i}": rng.random(per).reshape(-1, 1024) for i in range(N_LARGE_ARRAYS)}


def make_large(size_mib: int) -> dict[str, Any]:
    """The large "model": its arrays plus a small fitted estimator."""
    return {"arrays": make_large_arrays(size_mib), "model": make_ridge()[0]}


def _arrays_of(obj: Any) -> dict[str, Any]:
    return obj["arrays"] if "arrays" in obj else obj


# --------------------------------------------------------------------------- in-memory tools


def memory_tools(model: Any) -> tuple[dict[str, tuple[Callable, Callable]], list[str]]:
    """name -> (dumps(obj) -> bytes, loads(bytes) -> obj); and skops' trusted list."""
    import joblib
    import skops.io as sio

    import devpersist

    def joblib_dumps(obj: Any) -> bytes:
        buf = io.BytesIO()
        joblib.dump(obj, buf)
        return buf.getvalue()

    # skops refuses types outside its default list: the user reviews them once and
    # passes them as trusted (computed here, outside the timed region)
    trusted = sio.get_untrusted_types(data=sio.dumps(model))
    tools = {
        "pickle (protocol 5)": (lambda o: pickle.dumps(o, protocol=5), pickle.loads),
        "joblib (BytesIO)": (joblib_dumps, lambda b: joblib.load(io.BytesIO(b))),
        "skops": (sio.dumps, lambda b: sio.loads(b, trusted=trusted)),
        "devpersist": (devpersist.dumps, devpersist.loads),
    }
    return tools, trusted


def bench_in_memory(name: str, model: Any, X: np.ndarray, cfg: dict[str, Any]) -> dict[str, Any]:
    tools, trusted = memory_tools(model)
    expected = model.predict(X)
    results = {}
    for tool, (dumps, loads) in tools.items():
        log(f"  {name}: {tool}")
        data = dumps(model)
        assert np.array_equal(loads(data).predict(X), expected), f"{tool} round trip differs"

        def round_trip(dumps: Callable = dumps, loads: Callable = loads) -> Any:
            return loads(dumps(model))

        repeat, min_s = cfg["small_repeat"], cfg["small_min_s"]
        results[tool] = {
            "round_trip": time_per_op(round_trip, repeat, min_s),
            "dumps": time_per_op(lambda d=dumps: d(model), repeat, min_s),
            "loads": time_per_op(lambda ld=loads, b=data: ld(b), repeat, min_s),
            "bytes": len(data),
        }
    return {"results": results, "skops_trusted": trusted}


def in_memory_markdown(title: str, res: dict[str, Any]) -> str:
    results = res["results"]
    base = results["pickle (protocol 5)"]
    base_min, base_med = min(base["round_trip"]), median(base["round_trip"])
    rows = []
    for tool, r in results.items():
        rt = r["round_trip"]
        rows.append(
            [
                tool,
                fmt_us(min(rt)),
                fmt_us(median(rt)),
                fmt_ratio(min(rt) / base_min),
                fmt_ratio(median(rt) / base_med),
                fmt_us(median(r["dumps"])),
                fmt_us(median(r["loads"])),
                f"{r['bytes']:,}",
            ]
        )
    header = [
        "tool",
        "round trip min (µs)",
        "round trip median (µs)",
        "vs pickle (min)",
        "vs pickle (median)",
        "dumps median (µs)",
        "loads median (µs)",
        "size (bytes)",
    ]
    trusted = res["skops_trusted"]
    note = f"skops `trusted=` (from `get_untrusted_types`): `{trusted}`"
    return f"### {title}\n\n{md_table(header, rows)}\n\n{note}\n"


# --------------------------------------------------------------------------- file tools


def file_tools() -> dict[str, dict[str, Any]]:
    """name -> {save(obj, path), load(path), arrays_only}.

    ``arrays_only`` tools (safetensors, torch) store just the arrays: raw-array
    references, not model persistence. Libraries are imported on first use, so that a
    memory child imports only its own.
    """

    def pickle_save(obj: Any, path: str) -> None:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=5)

    def pickle_load(path: str) -> Any:
        with open(path, "rb") as f:
            return pickle.load(f)

    def joblib_save(obj: Any, path: str) -> None:
        import joblib

        joblib.dump(obj, path)

    def joblib_load(path: str) -> Any:
        import joblib

        return joblib.load(path)

    def skops_save(obj: Any, path: str) -> None:
        import skops.io as sio

        sio.dump(obj, path)

    skops_trusted: dict[str, list[str]] = {}

    def skops_load(path: str) -> Any:
        import skops.io as sio

        # the types a user reviewed once and trusts; computed on the first (untimed,
        # checking) load of each file, as the in-memory case computes them before timing
        if path not in skops_trusted:
            skops_trusted[path] = sio.get_untrusted_types(file=path)
        return sio.load(path, trusted=skops_trusted[path])

    def dvp_save(obj: Any, path: str) -> None:
        import devpersist

        devpersist.dump(obj, path)

    def dvp_load(path: str) -> Any:
        import devpersist

        return devpersist.load(path)

    def dvp_save_fileobj(obj: Any, path: str) -> None:
        import devpersist

        with open(path, "wb") as f:
            devpersist.dump(obj, f)

    def dvp_load_fileobj(path: str) -> Any:
        import devpersist

        with open(path, "rb") as f:
            return devpersist.load(f)

    def st_save(arrays: Any, path: str) -> None:
        import safetensors.numpy

        safetensors.numpy.save_file(arrays, path)

    def st_load(path: str) -> Any:
        import safetensors.numpy

        return safetensors.numpy.load_file(path)

    def torch_save(tensors: Any, path: str) -> None:
        import torch

        torch.save(tensors, path)

    def torch_load(path: str) -> Any:
        import torch

        return torch.load(path, weights_only=True)

    return {
        "pickle (protocol 5)": dict(save=pickle_save, load=pickle_load),
        "joblib": dict(save=joblib_save, load=joblib_load),
        "skops": dict(save=skops_save, load=skops_load),
        "devpersist (path: atomic, fsync)": dict(save=dvp_save, load=dvp_load),
        "devpersist (open file object)": dict(save=dvp_save_fileobj, load=dvp_load_fileobj),
        "safetensors (arrays only)": dict(save=st_save, load=st_load, arrays_only="numpy"),
        "torch.save (arrays only)": dict(save=torch_save, load=torch_load, arrays_only="torch"),
    }


def _payload(tool: dict[str, Any], obj: dict[str, Any]) -> Any:
    kind = tool.get("arrays_only")
    if kind == "numpy":
        return obj["arrays"]
    if kind == "torch":
        import torch

        return {k: torch.from_numpy(v) for k, v in obj["arrays"].items()}  # no copy
    return obj


def _check_loaded(tool: str, loaded: Any, obj: dict[str, Any]) -> None:
    arrays = _arrays_of(loaded)
    for k, v in obj["arrays"].items():
        got = arrays[k]
        got = got.numpy() if hasattr(got, "numpy") else got
        assert np.array_equal(got, v), f"{tool}: array {k} differs after loading"


def bench_files(cfg: dict[str, Any], workdir: str) -> dict[str, Any]:
    obj = make_large(cfg["large_mib"])
    nbytes = sum(a.nbytes for a in obj["arrays"].values())
    tools = file_tools()
    paths = {name: os.path.join(workdir, f"large{i}.bin") for i, name in enumerate(tools)}
    payloads = {name: _payload(t, obj) for name, t in tools.items()}
    saves: dict[str, list[float]] = {name: [] for name in tools}
    loads: dict[str, list[float]] = {name: [] for name in tools}

    # Repeats interleaved across tools, so that drift (other load, writeback) is shared;
    # round 0 is an untimed warm-up (first-touch costs: file blocks, imports, caches).
    rounds = cfg["large_repeat"] + 1
    for r in range(rounds):
        log(f"  large: save round {r}/{cfg['large_repeat']}" + (" (warm-up)" if r == 0 else ""))
        gc.collect()
        for name, t in tools.items():
            took = time_once(
                lambda t=t, n=name: t["save"](payloads[n], paths[n]), _fresh(paths[name])
            )
            if r:
                saves[name].append(took)
    sizes = {name: os.path.getsize(p) for name, p in paths.items()}
    for name, t in tools.items():
        _check_loaded(name, t["load"](paths[name]), obj)
    gc.collect()
    for r in range(rounds):
        log(f"  large: load round {r}/{cfg['large_repeat']}" + (" (warm-up)" if r == 0 else ""))
        gc.collect()
        for name, t in tools.items():
            holder: list[Any] = []  # the result is freed after the timing, not in it
            took = time_once(lambda t=t, n=name, h=holder: h.append(t["load"](paths[n])))
            if r:
                loads[name].append(took)
            holder.clear()

    # lazy loading, for reference: no array bytes are read (nor verified) until used
    import devpersist

    dvp_path = paths["devpersist (path: atomic, fsync)"]
    mmap_times = []
    for _ in range(cfg["large_repeat"]):
        holder: list[Any] = []
        mmap_times.append(
            time_once(lambda h=holder: h.append(devpersist.load(dvp_path, mmap=True)))
        )
        holder.clear()
    return {
        "nbytes": nbytes,
        "save": saves,
        "load": loads,
        "size": sizes,
        "mmap_load": mmap_times,
        "paths": paths,
    }


def files_markdown(res: dict[str, Any]) -> str:
    nbytes = res["nbytes"]
    base = "pickle (protocol 5)"
    tables = []
    for op in ("save", "load"):
        base_med, base_min = median(res[op][base]), min(res[op][base])
        rows = []
        for name, times in res[op].items():
            med, best = median(times), min(times)
            rows.append(
                [
                    name,
                    f"{med:.3f}",
                    f"{nbytes / med / GB:.2f}",
                    f"{nbytes / best / GB:.2f}",
                    fmt_ratio(base_med / med),
                    fmt_ratio(base_min / best),
                    f"{res['size'][name] / MiB:.1f}",
                ]
            )
        if op == "load":
            mm = median(res["mmap_load"])
            rows.append(
                [
                    "devpersist `load(mmap=True)` (lazy: reads no array bytes)",
                    f"{mm:.4f}",
                    "n/a",
                    "n/a",
                    "n/a",
                    "n/a",
                    "",
                ]
            )
        header = [
            "tool",
            f"{op} median (s)",
            "GB/s (median)",
            "GB/s (best)",
            "speed vs pickle (median)",
            "speed vs pickle (best)",
            "file (MiB)",
        ]
        tables.append(f"**{op.capitalize()}**\n\n" + md_table(header, rows))
    return "\n\n".join(tables)


# --------------------------------------------------------------------------- peak memory

MEMORY_TOOLS = (
    "pickle (protocol 5)",
    "joblib",
    "skops",
    "devpersist (path: atomic, fsync)",
    "safetensors (arrays only)",
    "torch.save (arrays only)",
)
QUICK_MEMORY_TOOLS = ("pickle (protocol 5)", "devpersist (path: atomic, fsync)")


def _preimport(tool: str) -> None:
    """Import what ``tool`` needs before the baseline, so imports are not counted."""
    import sklearn.linear_model  # noqa: F401  (the model inside the object)

    if tool.startswith("joblib"):
        import joblib  # noqa: F401
    elif tool.startswith("skops"):
        import skops.io  # noqa: F401
    elif tool.startswith("devpersist"):
        import devpersist.arrays  # noqa: F401
    elif tool.startswith("safetensors"):
        import safetensors.numpy  # noqa: F401
    elif tool.startswith("torch"):
        import torch  # noqa: F401


def memory_child(tool_name: str, op: str, path: str, size_mib: int) -> None:
    """Run one save or one load in this (fresh) process; print JSON of RSS figures."""
    _preimport(tool_name)
    tool = file_tools()[tool_name]
    payload = _payload(tool, make_large(size_mib)) if op == "save" else None
    gc.collect()
    reset = reset_peak_rss()
    # without a reset (not Linux), the peak so far is the baseline: an underestimate
    # when imports or building the data peaked higher than what remains resident
    baseline = current_rss_bytes() if reset else peak_rss_bytes()
    start = time.perf_counter()
    if op == "save":
        tool["save"](payload, path)
    else:
        loaded = tool["load"](path)
    elapsed = time.perf_counter() - start
    peak = peak_rss_bytes()
    after = current_rss_bytes()
    if op == "load":
        del loaded
    print(
        json.dumps(
            {
                "baseline": baseline,
                "peak": peak,
                "after_rss": after,
                "seconds": elapsed,
                "peak_reset": reset,
            }
        )
    )


def _run_memory_child(name: str, op: str, path: str, size_mib: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--memory-child",
        name,
        op,
        path,
        "--size-mib",
        str(size_mib),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {name} {op} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_memory(
    cfg: dict[str, Any], workdir: str, files: dict[str, Any], tools: tuple[str, ...]
) -> dict[str, Any]:
    """One fresh process per (tool, operation), a few at a time: each measures its own
    peak RSS, which other processes do not change (their timings are not reported)."""
    from concurrent.futures import ThreadPoolExecutor

    nbytes = files["nbytes"]
    jobs = []
    for name in tools:
        for op in ("save", "load"):
            path = (
                files["paths"][name]
                if op == "load"
                else os.path.join(workdir, f"mem_save_{len(jobs)}.bin")
            )
            jobs.append((name, op, path))
    workers = max(1, min(4, (os.cpu_count() or 1)))
    log(f"  memory: {len(jobs)} fresh processes, {workers} at a time")
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_run_memory_child, n, o, p, cfg["large_mib"]) for n, o, p in jobs]
        outcomes = [f.result() for f in futures]
    results: dict[str, dict[str, Any]] = {name: {} for name in tools}
    for (name, op, path), r in zip(jobs, outcomes, strict=True):
        # save: the data is resident before the baseline; load: it is not
        r["extra"] = r["peak"] - r["baseline"] - (nbytes if op == "load" else 0)
        results[name][op] = r
        if op == "save" and os.path.exists(path):
            os.remove(path)
    return {"nbytes": nbytes, "results": results}


def memory_markdown(res: dict[str, Any]) -> str:
    nbytes = res["nbytes"]
    rows = []
    for name, r in res["results"].items():
        s, lo = r["save"], r["load"]
        rows.append(
            [
                name,
                f"{s['extra'] / MiB:,.0f}",
                f"{s['extra'] / nbytes:.2f}",
                f"{(lo['peak'] - lo['baseline']) / MiB:,.0f}",
                f"{lo['extra'] / MiB:,.0f}",
                f"{lo['extra'] / nbytes:.2f}",
            ]
        )
    header = [
        "tool",
        "save: peak above baseline (MiB)",
        "save: / data",
        "load: peak above baseline (MiB)",
        "load: above the data (MiB)",
        "load: / data",
    ]
    return md_table(header, rows)


# --------------------------------------------------------------------------- case 5a: mmap

SPARSE_ZEROS = 0.9  # the compressible data kind: this fraction of zeros


def make_float32_arrays(size_mib: int, kind: str = "normal") -> dict[str, np.ndarray]:
    """``size_mib`` MiB of float32 in ``N_LARGE_ARRAYS`` C-contiguous 2-d arrays.

    ``kind``: "normal", standard normal values (hard to compress); "sparse", the same
    with ``SPARSE_ZEROS`` of them, at random positions, set to zero (like a pruned layer).
    """
    per = size_mib * MiB // 4 // N_LARGE_ARRAYS
    rng = np.random.default_rng(SEED)
    out = {}
    for i in range(N_LARGE_ARRAYS):
        a = rng.standard_normal(per, dtype=np.float32)
        if kind == "sparse":
            a[rng.random(per, dtype=np.float32) < SPARSE_ZEROS] = 0
        out[f"w{i}"] = a.reshape(-1, 1024)
    return out


def read_into(path: str, buf: np.ndarray) -> int:
    """Read the file's bytes into the front of ``buf`` with ``readinto`` (unbuffered);
    a loop, since Linux returns at most 2 GiB - 4 KiB per read."""
    view = memoryview(buf).cast("B")
    done = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(view[done:])
            if not n:
                return done
            done += n


def sum_all(arrays: dict[str, Any]) -> None:
    """Touch every byte: ``arr.sum()`` per numpy array, ``t.sum()`` per torch tensor."""
    for a in arrays.values():
        a.sum()


def _equal(got: Any, expected: np.ndarray) -> bool:
    got = got.numpy() if hasattr(got, "numpy") else got
    return bool(np.array_equal(got, expected))


def bench_mmap(cfg: dict[str, Any], workdir: str) -> dict[str, Any]:
    """Memory-mapped loads of a file hot in the page cache: the time until ``load``
    returns, then the time to touch (sum) all the mapped data, against summing the same
    arrays in memory and against reading the file's bytes (page-cache speed)."""
    import devpersist

    try:
        import torch
    except ImportError:
        torch = None
    arrays = make_float32_arrays(cfg["mmap_mib"])
    nbytes = sum(a.nbytes for a in arrays.values())
    model = make_ridge()[0]
    paths = {"devpersist numpy": os.path.join(workdir, "mmap_numpy.dvp")}
    log("  mmap: saving")
    devpersist.dump({"arrays": arrays, "model": model}, paths["devpersist numpy"])
    # name -> (load() -> dict of arrays, the arrays in memory it is compared with)
    loaders: dict[str, tuple[Callable[[], dict[str, Any]], dict[str, Any]]] = {
        "devpersist numpy": (
            lambda: devpersist.load(paths["devpersist numpy"], mmap=True)["arrays"],
            arrays,
        )
    }
    in_memory: dict[str, dict[str, Any]] = {"numpy": arrays}
    if torch is not None:
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}  # no copy
        in_memory["torch"] = tensors
        paths["devpersist torch"] = os.path.join(workdir, "mmap_torch.dvp")
        paths["torch.load"] = os.path.join(workdir, "mmap_torch.pt")
        devpersist.dump({"arrays": tensors, "model": model}, paths["devpersist torch"])
        torch.save(tensors, paths["torch.load"])
        loaders["devpersist torch"] = (
            lambda: devpersist.load(paths["devpersist torch"], mmap=True)["arrays"],
            tensors,
        )
        loaders["torch.load"] = (
            lambda: torch.load(paths["torch.load"], mmap=True, weights_only=True),
            tensors,
        )
    os.sync()  # no writeback of these files during the timings
    sizes = {name: os.path.getsize(p) for name, p in paths.items()}
    ref_path = paths["devpersist numpy"]
    # preallocated and already faulted in: the reference read pays only the copy
    buf = page_aligned_empty(max(sizes.values()))  # (not the kernel's slow alignment)
    buf.fill(0)
    for p in paths.values():  # into the page cache (hot from here on)
        read_into(p, buf)

    for name, (load, _) in loaders.items():  # check before timing (reads every byte)
        got = load()
        for k, v in arrays.items():
            assert _equal(got[k], v), f"mmap {name}: array {k} differs"
        if name == "devpersist numpy" and any(a.flags.writeable for a in got.values()):
            log("  mmap: warning: devpersist returned writeable arrays (not mapped?)")
        del got
    gc.collect()

    times: dict[str, list[float]] = {"read": []}
    times.update({f"sum {k}": [] for k in in_memory})
    for name in loaders:
        times[f"{name} load"] = []
        times[f"{name} touch"] = []
    rounds = cfg["mmap_repeat"] + 1
    for r in range(rounds):
        log(f"  mmap: round {r}/{cfg['mmap_repeat']}" + (" (warm-up)" if r == 0 else ""))
        gc.collect()
        timed = {"read": time_once(lambda b=buf: read_into(ref_path, b))}
        for k, arrs in in_memory.items():
            timed[f"sum {k}"] = time_once(lambda a=arrs: sum_all(a))
        for name, (load, _) in loaders.items():
            holder: list[Any] = []  # a fresh mapping each round; freed after the timings
            timed[f"{name} load"] = time_once(lambda h=holder, ld=load: h.append(ld()))
            timed[f"{name} touch"] = time_once(lambda h=holder: sum_all(h[0]))
            holder.clear()
            gc.collect()
        if r:
            for k, t in timed.items():
                times[k].append(t)
    for p in paths.values():
        os.remove(p)
    return {
        "nbytes": nbytes,
        "sizes": sizes,
        "times": times,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
    }


def mmap_markdown(res: dict[str, Any]) -> str:
    nbytes, times, sizes = res["nbytes"], res["times"], res["sizes"]
    read_bytes = sizes["devpersist numpy"]
    ref_speed = read_bytes / median(times["read"])

    def row(label: str, key: str, nb: int | None) -> list[str]:
        t = times[key]
        med, best = median(t), min(t)
        if nb is None:  # nothing read: a time, not a throughput
            return [label, f"{med * 1e3:,.1f}", f"{best * 1e3:,.1f}", "—", "—", "—"]
        return [
            label,
            f"{med * 1e3:,.1f}",
            f"{best * 1e3:,.1f}",
            f"{nb / med / GB:.2f}",
            f"{nb / best / GB:.2f}",
            fmt_ratio(nb / med / ref_speed),
        ]

    rows = [
        row(
            "reference: `f.readinto` of the devpersist file into a preallocated numpy buffer "
            "(page-cache read)",
            "read",
            read_bytes,
        ),
        row("reference: `arr.sum()` of the numpy arrays already in memory", "sum numpy", nbytes),
        row(
            "devpersist `load(path, mmap=True)`, numpy arrays: until it returns",
            "devpersist numpy load",
            None,
        ),
        row("… then `arr.sum()` of every mapped array", "devpersist numpy touch", nbytes),
    ]
    if "sum torch" in times:
        threads = res["torch_threads"]
        rows += [
            row(
                f"reference: `t.sum()` of the torch tensors already in memory ({threads} threads)",
                "sum torch",
                nbytes,
            ),
            row(
                "devpersist `load(path, mmap=True)`, torch CPU tensors: until it returns",
                "devpersist torch load",
                None,
            ),
            row("… then `t.sum()` of every mapped tensor", "devpersist torch touch", nbytes),
            row(
                "peer: `torch.load(mmap=True, weights_only=True)` of a `torch.save` file: "
                "until it returns",
                "torch.load load",
                None,
            ),
            row("… then `t.sum()` of every mapped tensor", "torch.load touch", nbytes),
        ]
    header = [
        "operation",
        "median (ms)",
        "min (ms)",
        "GB/s (median)",
        "GB/s (best)",
        "speed vs page-cache read (median)",
    ]
    return md_table(header, rows)


# --------------------------------------------------------------------------- case 5b: compression


def _codec_label(compress: str | None) -> str:
    if compress is None:
        return "devpersist (no compression)"
    try:
        from devpersist._codecs import parse_compress

        level = parse_compress(compress)[1]  # type: ignore[index]
        return f'devpersist `compress="{compress}"` (level {level})'
    except (ImportError, AttributeError, TypeError):
        return f'devpersist `compress="{compress}"`'


def compress_tools() -> tuple[dict[str, dict[str, Callable]], list[str]]:
    """name -> {save(obj, open_file), load(open_file)}; and the rows left out, why."""
    from importlib.util import find_spec

    import joblib

    import devpersist

    has = {"zstd": find_spec("zstandard") is not None, "lz4": find_spec("lz4") is not None}
    tools: dict[str, dict[str, Callable]] = {}
    skipped = []
    for c in (None, "zstd", "lz4", "zlib"):
        if c is not None and not has.get(c, True):
            skipped.append(f"devpersist {c} (package missing)")
            continue
        tools[_codec_label(c)] = dict(
            save=lambda obj, f, c=c: devpersist.dump(obj, f, compress=c), load=devpersist.load
        )
    for codec, level in (("zlib", 3), ("lz4", 3)):
        if not has.get(codec, True):
            skipped.append(f"joblib {codec} (package missing)")
            continue
        tools[f'joblib `compress=("{codec}", {level})`'] = dict(
            save=lambda obj, f, c=(codec, level): joblib.dump(obj, f, compress=c),
            load=joblib.load,
        )
    return tools, skipped


def bench_compress(cfg: dict[str, Any], workdir: str) -> dict[str, Any]:
    """Save to and load from an open file object with each codec, for two data kinds."""
    tools, skipped = compress_tools()
    paths = {name: os.path.join(workdir, f"compress{i}.bin") for i, name in enumerate(tools)}
    model = make_ridge()[0]
    out: dict[str, Any] = {"skipped": skipped, "kinds": {}}

    def save(t: dict[str, Callable], obj: Any, path: str) -> None:
        with open(path, "wb") as f:
            t["save"](obj, f)

    def load(t: dict[str, Callable], path: str) -> Any:
        with open(path, "rb") as f:
            return t["load"](f)

    for kind in ("normal", "sparse"):
        obj = {"arrays": make_float32_arrays(cfg["compress_mib"], kind), "model": model}
        nbytes = sum(a.nbytes for a in obj["arrays"].values())
        saves: dict[str, list[float]] = {name: [] for name in tools}
        loads: dict[str, list[float]] = {name: [] for name in tools}
        rounds = cfg["compress_repeat"] + 1
        for r in range(rounds):  # interleaved across tools; round 0 is a warm-up
            log(
                f"  compress ({kind}): save round {r}/{cfg['compress_repeat']}"
                + (" (warm-up)" if r == 0 else "")
            )
            gc.collect()
            for name, t in tools.items():
                took = time_once(
                    lambda t=t, p=paths[name], o=obj: save(t, o, p), _fresh(paths[name])
                )
                if r:
                    saves[name].append(took)
        sizes = {name: os.path.getsize(p) for name, p in paths.items()}
        for name, t in tools.items():
            _check_loaded(name, load(t, paths[name]), obj)
        for r in range(rounds):
            log(
                f"  compress ({kind}): load round {r}/{cfg['compress_repeat']}"
                + (" (warm-up)" if r == 0 else "")
            )
            gc.collect()
            for name, t in tools.items():
                holder: list[Any] = []
                took = time_once(lambda t=t, p=paths[name], h=holder: h.append(load(t, p)))
                if r:
                    loads[name].append(took)
                holder.clear()
        out["kinds"][kind] = {"nbytes": nbytes, "save": saves, "load": loads, "size": sizes}
        del obj
    for p in paths.values():
        if os.path.exists(p):
            os.remove(p)
    return out


def compress_markdown(res: dict[str, Any]) -> str:
    header = [
        "tool",
        "save median (s)",
        "save GB/s (median)",
        "save GB/s (best)",
        "file / data",
        "load median (s)",
        "load GB/s (median)",
        "load GB/s (best)",
    ]
    titles = {
        "normal": "random standard normal float32 (hard to compress)",
        "sparse": f"float32 with {SPARSE_ZEROS:.0%} zeros at random positions, the rest "
        "standard normal (compressible, like a pruned layer)",
    }
    tables = []
    for kind, r in res["kinds"].items():
        nbytes = r["nbytes"]
        rows = []
        for name in r["save"]:
            s, lo = r["save"][name], r["load"][name]
            rows.append(
                [
                    name,
                    f"{median(s):.3f}",
                    f"{nbytes / median(s) / GB:.2f}",
                    f"{nbytes / min(s) / GB:.2f}",
                    f"{r['size'][name] / nbytes:.3f}",
                    f"{median(lo):.3f}",
                    f"{nbytes / median(lo) / GB:.2f}",
                    f"{nbytes / min(lo) / GB:.2f}",
                ]
            )
        tables.append(f"**{titles[kind]}**\n\n" + md_table(header, rows))
    if res["skipped"]:
        tables.append("Left out: " + ", ".join(res["skipped"]) + ".")
    return "\n\n".join(tables)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: fewer repeats, 32 MiB large case (< 60 s)"
    )
    parser.add_argument(
        "--large-mib",
        type=int,
        default=None,
        help="size of the large case in MiB (multiple of 4; default 256, 32 with --quick)",
    )
    parser.add_argument(
        "--tmpdir",
        default=None,
        help="where the files of cases 3 to 5 go (default: the system temp dir)",
    )
    parser.add_argument(
        "--mmap-mib",
        type=int,
        default=None,
        help="size of the memory-mapped case 5a in MiB (default 2048, 64 with --quick)",
    )
    parser.add_argument(
        "--compress-mib",
        type=int,
        default=None,
        help="size of the compressed case 5b in MiB (default 256, 32 with --quick)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory case")
    parser.add_argument("--no-mmap", action="store_true", help="skip case 5a (memory-mapped)")
    parser.add_argument("--no-compress", action="store_true", help="skip case 5b (compressed)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw timings as JSON")
    parser.add_argument(
        "--memory-child", nargs=3, metavar=("TOOL", "OP", "PATH"), help=argparse.SUPPRESS
    )
    parser.add_argument("--size-mib", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", FutureWarning)
    if args.memory_child:
        memory_child(*args.memory_child, size_mib=args.size_mib)
        return 0

    cfg = dict(QUICK if args.quick else FULL)
    if args.large_mib is not None:
        if args.large_mib <= 0 or args.large_mib % 4:
            parser.error("--large-mib must be a positive multiple of 4")
        cfg["large_mib"] = args.large_mib
    for opt in ("mmap_mib", "compress_mib"):
        value = getattr(args, opt)
        if value is not None:
            if value <= 0:
                parser.error(f"--{opt.replace('_', '-')} must be positive")
            cfg[opt] = value

    started = time.perf_counter()
    load_before = os.getloadavg()
    info = machine_info()
    command = " ".join(["python benchmarks/bench_cpu.py", *sys.argv[1:]])
    out = [
        "# devpersist CPU benchmark\n",
        machine_markdown(info),
        f"\nCommand: `{command}`; repeats: in-memory {cfg['small_repeat']} (each ≥ "
        f"{cfg['small_min_s']} s of calls), large {cfg['large_repeat']}, memory-mapped "
        f"{cfg['mmap_repeat']}, compressed {cfg['compress_repeat']}, each after a warm-up.\n",
    ]
    raw: dict[str, Any] = {"machine": info, "config": cfg}

    log("case 1: small Ridge")
    model, X = make_ridge()
    raw["ridge"] = bench_in_memory("ridge", model, X, cfg)
    out.append(in_memory_markdown("1. Small Ridge (100x10), dumps + loads in memory", raw["ridge"]))

    log("case 2: random forest")
    model, X = make_forest()
    raw["forest"] = bench_in_memory("forest", model, X, cfg)
    out.append(
        in_memory_markdown(
            "2. RandomForestClassifier(n_estimators=50) on 2000x20, dumps + loads in memory",
            raw["forest"],
        )
    )

    workdir = tempfile.mkdtemp(prefix="devpersist-bench-", dir=args.tmpdir)
    try:
        log(f"case 3: large ({cfg['large_mib']} MiB) in {workdir}")
        files = bench_files(cfg, workdir)
        raw["large"] = {k: v for k, v in files.items() if k != "paths"}
        out.append(
            f"### 3. Large: {cfg['large_mib']} MiB of float64 ({N_LARGE_ARRAYS} arrays) plus a "
            f"fitted Ridge, save to / load from a file in `{os.path.dirname(workdir)}`\n\n"
            + files_markdown(files)
            + "\n\nGB/s = 10^9 bytes of array data per second; speed vs pickle > 1 is faster than "
            "pickle. One untimed warm-up round precedes the timed ones. Files are "
            "hot in the page cache when loaded (each was just written): loads measure "
            "deserialization and memory copies, not the disk. Before each save, the previous "
            "file is removed and `os.sync()` runs (untimed). Only the devpersist path row "
            "fsyncs (atomic save); safetensors and torch store the arrays only.\n"
        )
        if not args.no_memory:
            log("case 4: peak memory")
            # --quick: the two that the targets compare (the others' imports cost ~20 s)
            tools = MEMORY_TOOLS if not args.quick else QUICK_MEMORY_TOOLS
            mem = bench_memory(cfg, workdir, files, tools)
            raw["memory"] = mem
            out.append(
                f"### 4. Peak RSS, {cfg['large_mib']} MiB case, one fresh process per operation "
                "(a few run at once; each measures only itself)\n\n"
                + memory_markdown(mem)
                + "\n\nBaseline: RSS just before the operation, after imports (and, for save, "
                "after building the data), with the peak reset there (`/proc/self/clear_refs`); "
                'peak: `VmHWM` after it. "Above the data" subtracts the loaded arrays '
                "themselves. Pages of a memory-mapped file that a loader touches count in "
                "RSS.\n"
            )
        if not (args.no_mmap and args.no_compress):
            out.append("### 5. Memory-mapped and compressed\n")
        if not args.no_mmap:
            log(f"case 5a: memory-mapped load ({cfg['mmap_mib']} MiB)")
            mm = bench_mmap(cfg, workdir)
            raw["mmap"] = mm
            out.append(
                f"**5a. `load(mmap=True)` of {cfg['mmap_mib']} MiB of float32 "
                f"({N_LARGE_ARRAYS} arrays, plus a fitted Ridge), then touching all the data; "
                "file hot in the page cache**\n\n"
                + mmap_markdown(mm)
                + "\n\nEvery file was saved once (`devpersist.dump(obj, path)`, `torch.save` "
                "for the peer, which stores the tensors only), synced, and read once before "
                "the timings: all reads are from the page cache, not the disk. Each round maps "
                "the file afresh, so the first touch pays the page faults of the mapping; "
                "GB/s = 10^9 bytes of array data per second (the reference read counts the "
                "whole file). Speed vs page-cache read = that row's GB/s / the `readinto` "
                "row's. numpy sums on one thread; torch sums on its intra-op threads.\n"
            )
        if not args.no_compress:
            log(f"case 5b: compressed save/load ({cfg['compress_mib']} MiB)")
            comp = bench_compress(cfg, workdir)
            raw["compress"] = comp
            out.append(
                f"**5b. Compressed save / load of {cfg['compress_mib']} MiB of float32 "
                f"({N_LARGE_ARRAYS} arrays, plus a fitted Ridge) to / from an open file object "
                f"in `{os.path.dirname(workdir)}`; {os.cpu_count()} cores (`os.cpu_count()`): "
                "devpersist's zstd compresses on all of them, zlib and lz4 on one**\n\n"
                + compress_markdown(comp)
                + "\n\nGB/s = 10^9 bytes of array data (uncompressed) per second, for save "
                "and load alike; file / data = file size over the array data's size. No "
                "fsync (files opened by the benchmark); before each save the previous file is "
                "removed and `os.sync()` runs (untimed). Loads read files hot in the page "
                "cache. Round 0 of each is an untimed warm-up.\n"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    out.append(
        f"Total benchmark time: {elapsed:.0f} s. " + load_average_line(load_before, load_after)
    )
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
