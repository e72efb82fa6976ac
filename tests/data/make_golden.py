"""Write the golden files of the current format version into tests/data/.

    python tests/data/make_golden.py            # write v{N}_arrays.dvp, v{N}_pipeline.dvp,
                                                # v{N}_golden.json (N = FORMAT_VERSION)
    python tests/data/make_golden.py --check    # rebuild in a temporary folder and compare

Golden files are frozen. Once a format version is released, its files stay in tests/data/
for good, and tests/test_format.py loads them on every run, because old files must keep
loading. Run this script only to create the files of a *new* format version (see
docs/format.md, "Changing the format"). It names its files after
``devpersist.FORMAT_VERSION`` and refuses to overwrite existing ones unless given --force.

The output is deterministic: fixed seeds, ``PYTHONHASHSEED=0``, ``SCIPY_ARRAY_API`` unset,
and a fixed import order (the numpy-only file is written before scikit-learn is imported,
so its manifest has no ``config`` and lists numpy alone). Re-running the script on the
same machine with the same library versions gives the same bytes. The manifest records
where a file was made (Python, platform, package versions, the CPU's name), so on another
machine or with other versions only the manifest's ``environment`` (and, for the model,
its pickled ``_sklearn_version`` and fitted values) differ. The sidecar
``v{N}_golden.json`` repeats those versions as ``made_with`` and stores what the tests
compare against: each array's dtype, shape, order and SHA-256, and the model's
predictions for a fixed ``X``, with floats written as ``float.hex`` so that they are exact.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_FIXED_ENV = {"PYTHONHASHSEED": "0"}
_UNSET_ENV = ("SCIPY_ARRAY_API",)


def _reexec_if_needed() -> None:
    """Restart under a fixed environment, so that re-runs are byte-identical."""
    env = dict(os.environ)
    if all(env.get(k) == v for k, v in _FIXED_ENV.items()) and not any(
        k in env for k in _UNSET_ENV
    ):
        return
    env.update(_FIXED_ENV)
    for key in _UNSET_ENV:
        env.pop(key, None)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


# --------------------------------------------------------------------------- payloads


def arrays_payload() -> dict[str, Any]:
    """A numpy-only object: arrays of many dtypes and layouts, and plain Python values."""
    import numpy as np

    rng = np.random.default_rng(20240601)
    point = np.dtype([("id", "<i4"), ("xy", "<f8", (2,)), ("tag", "S3")])
    padded = np.dtype({"names": ["flag", "value"], "formats": ["u1", "<f8"]}, align=True)
    nested = np.dtype([("pos", [("x", "<f4"), ("y", "<f4")]), ("ok", "?")])

    aligned = np.zeros(3, dtype=padded)  # zeros: the 7 padding bytes are zero, not garbage
    aligned["flag"] = [1, 0, 1]
    aligned["value"] = rng.standard_normal(3)
    nested_values = np.zeros(2, dtype=nested)
    nested_values["pos"]["x"] = [1.5, -2.0]
    nested_values["pos"]["y"] = [0.25, 8.0]
    nested_values["ok"] = [True, False]
    readonly = np.arange(6, dtype="<u2")
    readonly.flags.writeable = False
    float32 = rng.standard_normal(5).astype("<f4")

    return {
        "float64_fortran": np.asfortranarray(rng.standard_normal((3, 4))),
        "float32": float32,
        "float32_again": float32,  # the same object twice: one blob, identity kept
        "float16": np.array([0.5, -1.0, 65504.0], dtype="<f2"),
        "special_floats": np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324], dtype="<f8"),
        "int64_big_endian": np.arange(-3, 3, dtype=">i8"),
        "int8": np.array([-128, 0, 127], dtype="i1"),
        "uint8_2d": rng.integers(0, 256, (2, 3), dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "complex128": (rng.standard_normal(2) + 1j * rng.standard_normal(2)).astype("<c16"),
        "unicode": np.array(["alpha", "β", ""]),
        "bytes": np.array([b"ab", b"c"]),
        "datetime64": np.array(["2024-02-29", "NaT"], dtype="<M8[D]"),
        "timedelta64": np.array([1, -5], dtype="<m8[s]"),
        "structured": np.array([(1, (0.5, 1.5), b"abc"), (2, (2.5, 3.5), b"de")], dtype=point),
        "structured_aligned": aligned,
        "structured_nested": nested_values,
        "scalar_0d": np.array(2.5, dtype="<f8"),
        "empty_2d": np.zeros((0, 3), dtype="<f4"),
        "empty_1d": np.zeros(0, dtype="<i4"),  # two empty blobs in a row share an offset
        "readonly": readonly,
        # over format 2's 64 KiB pack limit: its own aligned blob (smaller arrays share
        # the pack); added with format 2, so the v1 files do not hold it
        "large": rng.standard_normal(9000),
        "python": {"name": "golden", "n": 3, "ratio": 0.5, "pair": (1, None), "flags": [True]},
    }


def pipeline_data() -> tuple[Any, Any, Any]:
    """Training data with string labels, and a fixed X to predict."""
    import numpy as np

    rng = np.random.default_rng(7)
    centers = np.array([[0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0], [0.0, 2.0, 2.0, 1.0]])
    scale = np.array([1.0, 10.0, 100.0, 0.1])  # features on different scales: the scaler matters
    labels = np.array(["cat", "dog", "fish"])
    index = np.repeat(np.arange(3), 20)
    X = (centers[index] + rng.standard_normal((60, 4))) * scale
    X_test = (rng.uniform(-1.0, 3.0, (8, 4))) * scale
    return X, labels[index], X_test


def pipeline_model() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _ = pipeline_data()
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])
    return model.fit(X, y)


# --------------------------------------------------------------------------- sidecar


def describe_array(arr: Any) -> dict[str, Any]:
    """What a loaded array must be, computed by numpy alone (not by devpersist)."""
    import numpy as np

    return {
        "descr": json.loads(json.dumps(np.lib.format.dtype_to_descr(arr.dtype))),
        "shape": list(arr.shape),
        "order": "F"
        if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous
        else "C",
        "writeable": bool(arr.flags.writeable),
        "sha256": hashlib.sha256(arr.tobytes(order="C")).hexdigest(),
    }


def _hex(values: Any) -> Any:
    return [_hex(v) for v in values] if hasattr(values, "__len__") else float(values).hex()


def build(folder: Path) -> dict[str, Any]:
    """Write the golden files into ``folder``; return the sidecar's contents."""
    assert "sklearn" not in sys.modules, "the numpy-only file must be written without sklearn"
    import numpy as np

    import devpersist

    version = devpersist.FORMAT_VERSION
    payload = arrays_payload()
    arrays_name = f"v{version}_arrays.dvp"
    (folder / arrays_name).write_bytes(devpersist.dumps(payload))

    model = pipeline_model()
    _, _, X_test = pipeline_data()
    pipeline_name = f"v{version}_pipeline.dvp"
    # from format 2 on, the model is saved compressed: graph and pack go through zlib
    compress = "zlib" if version >= 2 else None
    (folder / pipeline_name).write_bytes(devpersist.dumps(model, compress=compress))

    files = {}
    for name in (arrays_name, pipeline_name):
        data = (folder / name).read_bytes()
        files[name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "made_with": devpersist.info(data)["environment"],
        }
    return {
        "format_version": version,
        "note": "written by tests/data/make_golden.py; frozen once released, never edit by hand",
        "files": files,
        "arrays": {
            "file": arrays_name,
            "arrays": {
                k: describe_array(v) for k, v in payload.items() if isinstance(v, np.ndarray)
            },
            "same_object": [["float32", "float32_again"]],
            "python_repr": {
                k: repr(v) for k, v in payload.items() if not isinstance(v, np.ndarray)
            },
        },
        "pipeline": {
            "file": pipeline_name,
            "type": "sklearn.pipeline.Pipeline",
            "X": _hex(X_test),
            "predict": [str(s) for s in model.predict(X_test)],
            "predict_proba": _hex(model.predict_proba(X_test)),
            "decision_function": _hex(model.decision_function(X_test)),
            "classes": [str(s) for s in model.classes_],
        },
    }


def _json(value: Any, indent: str = "") -> str:
    """JSON with one key per line, and lists of scalars (rows of numbers) on one line."""
    if isinstance(value, dict):
        inner = indent + "  "
        items = [f"{inner}{json.dumps(k)}: {_json(v, inner)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}" if items else "{}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _json(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


def write_sidecar(folder: Path, sidecar: dict[str, Any]) -> Path:
    path = folder / f"v{sidecar['format_version']}_golden.json"
    path.write_text(_json(sidecar) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--check", action="store_true", help="rebuild elsewhere and compare")
    parser.add_argument("--force", action="store_true", help="overwrite existing golden files")
    args = parser.parse_args(argv)
    _reexec_if_needed()

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            sidecar = write_sidecar(Path(tmp), build(Path(tmp)))
            names = [*sidecar_files(sidecar), sidecar.name]
            differ = [n for n in names if not filecmp.cmp(Path(tmp) / n, HERE / n, shallow=False)]
        for name in names:
            print(f"{name}: {'DIFFERS' if name in differ else 'identical'}")
        return 1 if differ else 0

    import devpersist

    version = devpersist.FORMAT_VERSION
    existing = sorted(HERE.glob(f"v{version}_*"))
    if existing and not args.force:
        listed = ", ".join(p.name for p in existing)
        print(
            f"golden files of format version {version} exist ({listed}); they are frozen. "
            "Use --check to compare, or --force to overwrite them.",
            file=sys.stderr,
        )
        return 2
    sidecar = write_sidecar(HERE, build(HERE))
    for name in [*sidecar_files(sidecar), sidecar.name]:
        print(f"wrote tests/data/{name}")
    return 0


def sidecar_files(sidecar_path: Path) -> list[str]:
    return sorted(json.loads(sidecar_path.read_text(encoding="utf-8"))["files"])


if __name__ == "__main__":
    sys.exit(main())
