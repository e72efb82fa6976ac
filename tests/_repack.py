"""Rewrite a devpersist file's manifest (and keep it valid), for tests of the reader.

A thin front for :mod:`tests._container`, the one re-sealer (v1 and v2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _container import edit_manifest as _edit
from _container import manifest_of as _manifest_of


def manifest_of(data: bytes) -> dict[str, Any]:
    """The manifest, arrays as rows (what ``devpersist.info`` shows)."""
    return _manifest_of(data)


def edit_manifest(data: bytes, edit: Callable[[dict[str, Any]], Any]) -> bytes:
    """Apply ``edit`` to the manifest and re-seal the file (checksum and trailer)."""
    return _edit(data, edit)
