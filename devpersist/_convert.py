"""Migration: turn pickle, joblib and skops files (or devpersist files) into devpersist files.

Reading a pickle or joblib file runs whatever code it contains: ``convert`` does it only
because the caller vouches for the source, and says so with a warning every time. skops
files are read with skops' own audit (its untrusted types must be passed explicitly).
CUDA tensors inside a pickle are mapped to the host while reading when ``device`` or
``namespace`` asks for it, so a GPU-fitted pickle converts on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from ._api import dump, load
from ._exceptions import FormatError, MissingLibraryError
from ._protocol import MAGIC
from ._sniff import is_zlib


class UntrustedSourceWarning(UserWarning):
    """A pickle or joblib source was unpickled: it could have run any code."""


#: How each compression joblib writes begins (joblib.dump(..., "model.joblib.xz") & co).
JOBLIB_MAGICS = (
    b"ZF",  # joblib's own zlib file (before 0.10)
    b"\x1f\x8b\x08",  # gzip (.gz)
    b"BZh",  # bz2 (.bz2)
    b"\xfd7zXZ\x00",  # xz (.xz)
    b"\x5d\x00\x00",  # lzma "alone" format (.lzma), default properties
    b"\x04\x22\x4d\x18",  # lz4 frame (.lz4)
    b"\x28\xb5\x2f\xfd",  # zstd frame
)


def detect(head: bytes) -> str:
    """``"devpersist"``, ``"zip"`` (skops or torch.save), ``"pickle"`` or ``"joblib"``
    (any compression joblib writes: zlib, gzip, bz2, xz, lzma, lz4)."""
    if head.startswith(MAGIC):
        return "devpersist"
    if head.startswith(b"PK"):
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"  # plain pickles and uncompressed joblib files alike
    if is_zlib(head) or head.startswith(JOBLIB_MAGICS):
        return "joblib"
    raise FormatError(
        "the source is neither a devpersist, pickle, joblib nor skops file "
        f"(it starts with {head[:8]!r})"
    )


def _zip_kind(src: str) -> str:
    """``"skops"`` or ``"torch"`` (torch.save's archive holds ``<name>/data.pkl``)."""
    import zipfile

    try:
        with zipfile.ZipFile(src) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise FormatError(f"the source starts like a zip archive but is not one: {exc}") from exc
    if "schema.json" in names:
        return "skops"
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "torch"
    raise FormatError(
        "the source is a zip archive but neither a skops file (no schema.json) nor a "
        "torch.save file (no data.pkl)"
    )


@contextlib.contextmanager
def _torch_storages_on(map_location: str | None) -> Iterator[None]:
    """While unpickling, rebuild torch storages on ``map_location`` (pytorch#16797)."""
    torch = sys.modules.get("torch")
    if map_location is None or torch is None:
        yield
        return
    storage = torch.storage
    original = storage._load_from_bytes

    def load_from_bytes(data: bytes) -> Any:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)

    storage._load_from_bytes = load_from_bytes
    try:
        yield
    finally:
        storage._load_from_bytes = original


def _read_source(
    src: str, kind: str, trusted: Iterable[str] | None, map_location: str | None
) -> Any:
    if kind == "zip" and _zip_kind(src) == "torch":
        raise FormatError(
            "the source is a torch.save file, which convert does not read: load it with "
            "torch.load(path, weights_only=True) (or as its documentation says), then "
            "save the object with devpersist.dump"
        )
    if kind == "zip":
        try:
            import skops.io as sio
        except ImportError as exc:
            raise MissingLibraryError(
                "the source looks like a skops file (a zip archive): pip install skops"
            ) from exc
        needed = sio.get_untrusted_types(file=src)
        unknown = sorted(set(needed) - set(trusted or ()))
        if unknown:
            from ._exceptions import UntrustedTypeError

            raise UntrustedTypeError(
                f"the skops file needs these types trusted: {unknown}; pass them as trusted=",
                unknown,
            )
        return sio.load(src, trusted=needed)
    warnings.warn(
        f"{src} is a {kind} file: reading it runs any code it contains. Convert only files "
        "you trust; the devpersist file written from it is safe to load anywhere.",
        UntrustedSourceWarning,
        stacklevel=3,
    )
    if "torch" not in sys.modules and map_location is not None:
        with contextlib.suppress(ImportError):
            import torch  # noqa: F401 - so that CUDA storages can be remapped
    with _torch_storages_on(map_location):
        if kind == "joblib" or _is_joblib(src):
            import joblib

            return joblib.load(src)
        import pickle

        with open(src, "rb") as f:
            return pickle.load(f)


def _is_joblib(src: str) -> bool:
    with open(src, "rb") as f:
        head = f.read(4096)
    return b"joblib.numpy_pickle" in head or b"NumpyArrayWrapper" in head


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    device: Any = None,
    namespace: str | None = None,
    compress: Any = None,
    precision: str | None = None,
    trusted: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Convert a pickle, joblib, skops or devpersist file into a devpersist file.

    ``device`` and ``namespace`` place the arrays as :func:`devpersist.load` does, e.g.
    ``namespace="numpy"`` turns a GPU-fitted model into a CPU/numpy artifact for serving.
    For a devpersist source, ``trusted`` extends its allowlist; for a skops source it
    lists the types to trust. ``metadata`` is stored as by :func:`devpersist.dump`;
    by default a devpersist source's metadata is kept. Returns the new file's
    :func:`devpersist.info`.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    with open(src, "rb") as f:
        kind = detect(f.read(16))
    planned = None
    if kind == "devpersist":
        if metadata is None:
            from ._api import info as _info

            metadata = _info(src).get("metadata")
        obj = load(src, trusted=trusted, device=device, namespace=namespace)
        planned = (
            getattr(obj, "_devpersist_config", None)
            if type(obj).__name__ == "ConfiguredEstimator"
            else None
        )
    else:
        host = "cpu" if (namespace is not None or device in ("cpu",)) else None
        obj = _read_source(src, kind, trusted, host)
        if device is not None or namespace is not None:
            from ._api import dumps, loads

            obj = loads(dumps(obj), device=device, namespace=namespace, restore_config=False)
    from ._config import applied, unwrap

    with applied(planned):  # the new file records the source's configuration, re-placed
        dump(unwrap(obj), dst, compress=compress, precision=precision, metadata=metadata)
    from ._api import info

    return info(dst)
