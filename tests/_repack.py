"""Rewrite a devpersist file's manifest (and keep it valid), for tests of the reader."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import xxhash

from devpersist import _format


def manifest_of(data: bytes) -> dict[str, Any]:
    return _format.Container.open(_format.BufferSource(data)).manifest


def edit_manifest(data: bytes, edit: Callable[[dict[str, Any]], Any]) -> bytes:
    """Apply ``edit`` to the manifest and re-seal the file (checksum and trailer)."""
    trailer = _format.TRAILER.unpack(data[-_format.TRAILER.size :])
    offset, length = trailer[0], trailer[1]
    manifest = json.loads(data[offset : offset + length])
    result = edit(manifest)
    manifest = manifest if result is None else result
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    tail = _format.TRAILER.pack(
        offset, len(raw), xxhash.xxh3_64_intdigest(raw), trailer[3], 0, _format.END_MAGIC
    )
    return data[:offset] + raw + tail
