"""The journey's serving process: ``python _journey_serve.py CASES.json MODE OUT.npz``.

``test_journey.py`` starts one per backend and load mode. It behaves like a real server:
imports scikit-learn before devpersist, loads every file of the batch with the mode's
options (``default``, ``host``, ``mapped`` or ``numpy``; see ``test_journey.py``) and
computes every output from a worker thread (scikit-learn's configuration is
thread-local). In mode ``numpy`` torch cannot be imported at all. Inputs are built and
outputs described by the same functions as on the fitting side (``_journey``).

Writes ``OUT.npz`` (each output's values as numpy, by ``key|method``) and
``OUT.npz.json`` (by case key and method: type, namespace, device and dtype, or the
error; a case that could not be served at all has an ``error``; ``_seconds`` is the time
the whole batch took, imports included).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


class _BlockTorch:
    """A meta path finder that makes torch unimportable in this process."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] == "torch":
            raise ImportError("torch is not importable here")


def load_options(mode: str, backend: str) -> dict[str, Any]:
    """The keyword arguments of ``devpersist.load`` for a load mode."""
    from _journey import MAPPED, SAVED

    return {
        "default": {},
        "host": {"device": "cpu"},
        "mapped": {"device": {SAVED[backend]: MAPPED[backend]}},
        "numpy": {"namespace": "numpy"},
    }[mode]


def to_input(array: Any, backend: str, mode: str) -> Any:
    """The prediction input on the device the loaded model's arrays are on."""
    from _journey import HOST, MAPPED, to_backend

    if mode == "numpy":
        return array
    device = {"default": None, "host": HOST[backend], "mapped": MAPPED[backend]}[mode]
    return to_backend(array, backend, device)


def compute(model: Any, methods: list[str], X: Any) -> dict[str, Any]:
    """Each method's output (``attr:name``: a fitted attribute), or the exception it raised."""
    import warnings

    got: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in methods:
            try:
                if method.startswith("attr:"):
                    got[method] = getattr(model, method[5:])
                else:
                    got[method] = getattr(model, method)(X)
            except Exception as exc:
                got[method] = exc
    return got


def main(listing: str, mode: str, out: str) -> None:
    if mode == "numpy":
        sys.meta_path.insert(0, _BlockTorch())
    started = time.perf_counter()
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import sklearn  # noqa: F401  (a real server imports its libraries before devpersist)
    from _journey import describe

    import devpersist

    results: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    with ThreadPoolExecutor(1) as worker:
        for case in json.loads(open(listing).read()):
            key = case["key"]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = devpersist.load(case["file"], **load_options(mode, case["backend"]))
                X = to_input(np.load(case["input"]), case["backend"], mode)
                got = worker.submit(compute, model, case["methods"], X).result()
                results[key] = {}
                for method, value in got.items():
                    if isinstance(value, Exception):
                        error = f"{type(value).__name__}: {value}"[:300]
                        results[key][method] = {"error": error}
                        continue
                    meta = describe(value)
                    arrays[f"{key}|{method}"] = meta.pop("values")
                    results[key][method] = meta
            except BaseException as exc:
                results[key] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if mode == "numpy":
        assert "torch" not in sys.modules
    results["_seconds"] = time.perf_counter() - started
    np.savez(out, **arrays)
    with open(out + ".json", "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
