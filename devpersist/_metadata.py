"""The user's own metadata (``dump(..., metadata={...})``): checked before anything is written.

Stored in the manifest under ``"metadata"`` as given, so it must be plain JSON: objects
with string keys, arrays (lists), strings, finite numbers, booleans and null. Tuples,
NaN, infinities and other objects are refused rather than silently changed, so that
``info(file)["metadata"]`` equals what was passed.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: The encoded metadata's largest size: a model card, not a data set.
MAX_METADATA_BYTES = 64 * 1024
#: How deeply objects and lists may nest.
MAX_DEPTH = 32


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Return ``metadata`` if it is a JSON object within the limits; raise ValueError or
    TypeError naming the offending key path otherwise."""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    _check(metadata, "metadata", 0)
    encoded = json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8")
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is {len(encoded)} bytes as JSON, over the {MAX_METADATA_BYTES}-byte "
            "limit: keep large data in its own file and record its hash here"
        )
    try:
        json.loads(encoded)
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise ValueError(f"metadata does not read back as JSON: {exc}") from exc
    return metadata


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: metadata nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}: JSON has no NaN or infinity")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a key {key!r}: metadata keys must be strings")
            _check(item, f"{where}[{key!r}]", depth + 1)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}: metadata holds JSON values only "
        "(dict with str keys, list, str, int, float, bool, None)"
    )
