"""Remote storage: any fsspec URL works wherever a path does.

- writing goes through an fsspec *transaction*: the object appears only when the whole
  file is written (S3: the multipart upload is completed), and a failed save aborts it,
  leaving no partial object;
- ``info`` opens the file without a cache, so it costs three small ranged reads (header,
  trailer, manifest) whatever the size of the arrays;
- ``load`` fetches a file of moderate size in one request, a larger one array by array
  with ranged reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from ._exceptions import DevpersistError, MissingLibraryError, RemoteStorageError

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: Files up to this size are fetched whole on load (one request).
WHOLE_FETCH_BYTES = 256 * 2**20


def is_url(file: Any) -> bool:
    return isinstance(file, str) and _URL.match(file) is not None


def _filesystem(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:
        raise MissingLibraryError(
            f"{url.split('://')[0]}:// URLs need fsspec: pip install fsspec "
            "(plus s3fs for s3://, gcsfs for gs://)"
        ) from exc
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise MissingLibraryError(f"cannot open {url}: {exc}") from exc
    return fs, path


class RemoteFileNotFoundError(RemoteStorageError, FileNotFoundError):
    """The URL names no file: both a :class:`RemoteStorageError` and, like a missing
    local path, a :class:`FileNotFoundError`."""


def _failure(url: str, action: str, exc: BaseException) -> RemoteStorageError:
    if isinstance(exc, FileNotFoundError):
        return RemoteFileNotFoundError(f"cannot {action} {url}: no such file")
    detail = str(exc) or type(exc).__name__
    return RemoteStorageError(f"cannot {action} {url}: {detail}")


@contextmanager
def writer(url: str, storage_options: dict[str, Any] | None) -> Iterator[IO[bytes]]:
    """A file object whose content becomes visible at ``url`` only if the block succeeds.

    Inside an fsspec transaction, closing the file does not commit it; the
    transaction commits on success and discards (S3: aborts the upload) on failure.
    """
    fs, path = _filesystem(url, storage_options)
    try:
        with fs.transaction, fs.open(path, "wb") as f:
            yield f
    except DevpersistError:
        raise
    except Exception as exc:
        raise _failure(url, "write", exc) from exc


@contextmanager
def reader(url: str, storage_options: dict[str, Any] | None, whole: bool) -> Iterator[Any]:
    """``(file object or bytes, size)``: the whole content when ``whole`` and small."""
    fs, path = _filesystem(url, storage_options)
    try:
        size = fs.size(path)
        if whole and size <= WHOLE_FETCH_BYTES:
            yield fs.cat_file(path), size
            return
        f = fs.open(path, "rb", cache_type="none")
    except DevpersistError:
        raise
    except Exception as exc:
        raise _failure(url, "read", exc) from exc
    with f:
        yield f, size
