"""Format version 2's manifest: the columnar arrays table, the pack, a compressed graph.

Place in the data flow: the writer (:mod:`devpersist._writer`) turns its per-array rows
into columns with :func:`encode_columns`; the reader (:class:`devpersist._format.Container`)
validates a version 2 manifest with :func:`validate_v2`, which checks the table one
column at a time (each distinct dtype and device once, every integer column by type
and range, the section chain) and returns the rows the rest of the package reads, the
same shape as version 1's entries. docs/format.md, "Version 2", specifies the table.

A row of a packed array has ``"packed": True`` and no ``checksum``: its ``offset`` counts
from the start of the pack's (decompressed) bytes, which one checksum covers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import FormatError, IntegrityError, ResourceLimitError, shown
from ._manifest import (
    CHECKSUM_RE,
    CODECS,
    MANIFEST_KEYS,
    MAX_ARRAY_BYTES,
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_NDIM,
    MAX_RATIO,
    META_KEYS,
    check_chain,
    check_checksum,
    check_globals,
    check_keys,
    check_manifest_start,
    check_top,
    validate_meta,
)
from ._protocol import HEADER, PACK_ALIGNMENT, Trailer, align
from .arrays import dtype_from_descr, namespaces

if TYPE_CHECKING:
    from .arrays import ArrayEntry

MANIFEST_KEYS_V2 = {**MANIFEST_KEYS, "arrays": dict, "pack": dict}
PACK_KEYS = {"offset": int, "length": int, "checksum": str, "codec": str}
SECTION_KEYS = {**PACK_KEYS, "size": int}
#: Columns of the arrays table: required, then optional (absent: all null).
COLUMNS = ("dtypes", "dtype", "shape", "order", "places", "place", "offset", "length", "checksum")
OPTIONAL_COLUMNS = ("codec", "meta", "path")
#: The most a section (the graph) may declare it decompresses to.
MAX_SECTION_BYTES = 2**46


def encode_columns(
    rows: list[dict[str, Any]], offsets: list[int], lengths: list[int], checksums: list[Any]
) -> dict[str, Any]:
    """The arrays table of a version 2 manifest.

    Parameters
    ----------
    rows : list of dict
        Each array's description (dtype, shape, order, namespace, device, and optionally
        codec, meta, path), as :class:`devpersist._writer.BlobSource` holds it.
    offsets, lengths, checksums : list
        Where each array was written (a packed array's offset counts from the pack's
        start, and its checksum is None: the pack's covers it).

    Returns
    -------
    dict
        The ``arrays`` member of the manifest.
    """
    dtypes: dict[str, int] = {}
    dtype_values: list[Any] = []
    places: dict[tuple[str, str], int] = {}
    table: dict[str, Any] = {"dtypes": dtype_values, "dtype": [], "shape": [], "order": ""}
    dtype_col, shape_col, place_col = table["dtype"], table["shape"], []
    order = []
    by_id: dict[int, int] = {}  # structured dtypes: the writer's cached lists recur
    for row in rows:
        d = row["dtype"]
        if isinstance(d, str):
            index = dtypes.get(d)
            if index is None:
                index = dtypes[d] = len(dtype_values)
                dtype_values.append(d)
        else:
            index = by_id.get(id(d))
            if index is None:
                key = repr(d)
                index = dtypes.get(key)
                if index is None:
                    index = dtypes[key] = len(dtype_values)
                    dtype_values.append(d)
                by_id[id(d)] = index
        dtype_col.append(index)
        shape_col.append(row["shape"])
        order.append(row["order"])
        place = (row["namespace"], row["device"])
        index = places.get(place)
        if index is None:
            index = places[place] = len(places)
        place_col.append(index)
    table["order"] = "".join(order)
    table["places"] = [list(p) for p in places]
    table["place"] = place_col
    table["offset"], table["length"], table["checksum"] = offsets, lengths, checksums
    for name in OPTIONAL_COLUMNS:
        if any(row.get(name) is not None for row in rows):  # only where some row has one
            table[name] = [row.get(name) for row in rows]
    return table


def _ints(name: str, column: Any, n: int, low: int, high: int) -> list[int]:
    if not isinstance(column, list) or len(column) != n:
        raise FormatError(f"the arrays table's {name!r} column must be a list of {n} items")
    if column and (not set(map(type, column)) <= {int} or min(column) < low or max(column) > high):
        raise FormatError(f"the arrays table's {name!r} column holds invalid values")
    return column


def _column(table: dict[str, Any], name: str, n: int) -> list[Any]:
    column = table.get(name)
    if column is None:
        return [None] * n
    if not isinstance(column, list) or len(column) != n:
        raise FormatError(f"the arrays table's {name!r} column must be a list of {n} items")
    return column


def check_section(name: str, entry: Any, sized: bool) -> None:
    """The graph's (``sized``) or the pack's entry: offset, length, checksum, a codec;
    the graph's ``size`` (its decompressed length) comes with its codec."""
    keys = SECTION_KEYS if sized else PACK_KEYS
    check_keys(name, entry, keys, ("offset", "length", "checksum"))
    check_checksum(name, entry["checksum"])
    if sized and ("codec" in entry) != ("size" in entry):
        raise FormatError(f"{name}: 'codec' and 'size' go together")
    if "codec" in entry and entry["codec"] not in CODECS:
        raise FormatError(f"{name}: unknown codec {shown(entry['codec'])}")
    if "size" in entry:
        size = entry["size"]
        if size < 0 or size > min(MAX_SECTION_BYTES, max(2**20, MAX_RATIO * entry["length"])):
            raise ResourceLimitError(
                f"{name}: {entry['length']} compressed bytes cannot honestly expand to {size}"
            )


def validate_v2(manifest: dict[str, Any], trailer: Trailer) -> list[ArrayEntry]:
    """Check every field of a version 2 manifest; return the arrays as rows."""
    check_top(manifest, trailer, MANIFEST_KEYS_V2)
    graph = manifest["graph"]
    check_section("the graph section", graph, sized=True)
    rows, pack_size = _rows(manifest["arrays"])
    expected = check_chain("the graph", graph, align(HEADER.size))
    pack = manifest.get("pack")
    if (pack is not None) != (pack_size is not None):
        raise FormatError("the manifest has a pack exactly when some array is packed")
    if pack is not None:
        check_section("the pack", pack, sized=False)
        if "codec" not in pack and pack["length"] != pack_size:
            raise IntegrityError(
                f"the pack holds {pack['length']} bytes but its arrays end at {pack_size}"
            )
        if (
            "codec" in pack
            and pack_size is not None
            and pack_size > max(2**20, MAX_RATIO * pack["length"])
        ):
            raise ResourceLimitError(
                f"the pack's {pack['length']} compressed bytes cannot honestly expand to "
                f"{pack_size}"
            )
        expected = check_chain("the pack", pack, expected)
    for i, row in enumerate(rows):
        if "packed" not in row:
            expected = check_chain(f"array {i}", row, expected)
    check_manifest_start(expected, trailer)
    check_globals(manifest)
    return rows


def _rows(table: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Validate the columns; the rows, and where the packed arrays end (None: none)."""
    if not isinstance(table, dict):
        raise FormatError("the manifest's arrays table is not a JSON object")
    for key in table:
        if key not in COLUMNS and key not in OPTIONAL_COLUMNS:
            raise FormatError(f"unknown column {shown(key)} in the arrays table")
    for key in COLUMNS:
        if key not in table:
            raise FormatError(f"the arrays table lacks the column {key!r}")
    dtype_col = table["dtype"]
    n = len(dtype_col) if isinstance(dtype_col, list) else -1
    dtypes, places, order = table["dtypes"], table["places"], table["order"]
    if not isinstance(dtypes, list) or len(dtypes) > max(n, 0) or (n > 0 and not dtypes):
        raise FormatError("the arrays table's 'dtypes' must list at most one dtype per array")
    if not isinstance(places, list) or len(places) > max(n, 0) or (n > 0 and not places):
        raise FormatError("the arrays table's 'places' must list at most one per array")
    if not isinstance(order, str) or len(order) != n or not set(order) <= {"C", "F"}:
        raise FormatError("the arrays table's 'order' must be one 'C' or 'F' per array")
    parsed = [dtype_from_descr(d, f"dtype {i} of the arrays table") for i, d in enumerate(dtypes)]
    for p in places:
        if not isinstance(p, list) or len(p) != 2 or not all(isinstance(part, str) for part in p):
            raise FormatError("the arrays table's places must be [namespace, device] pairs")
        if p[0] not in namespaces():
            raise FormatError(f"unknown array namespace {shown(p[0])}")
        if len(p[1]) > 256:
            raise FormatError("device name too long")
    _ints("dtype", dtype_col, n, 0, len(dtypes) - 1)
    place_col = _ints("place", table["place"], n, 0, len(places) - 1)
    offsets = _ints("offset", table["offset"], n, 0, 2**63)
    lengths = _ints("length", table["length"], n, 0, 2**63)
    shapes = _column(table, "shape", n)
    checksums = _column(table, "checksum", n)
    codecs = _column(table, "codec", n)
    metas = _column(table, "meta", n)
    paths = _column(table, "path", n)
    rows: list[dict[str, Any]] = []
    pack_end: int | None = None
    itemsizes = [dt.itemsize for dt in parsed]
    step = PACK_ALIGNMENT
    for i in range(n):
        d = dtype_col[i]
        itemsize = itemsizes[d]
        shape = shapes[i]
        if type(shape) is not list or len(shape) > MAX_NDIM:
            raise FormatError(f"array {i}: invalid shape {shown(shape)}")
        nonzero, zero = 1, False
        for dim in shape:
            if type(dim) is not int or not 0 <= dim <= MAX_DIM:
                raise FormatError(f"array {i}: invalid shape {shown(shape)}")
            if dim:
                nonzero *= dim
                if nonzero > MAX_ELEMENTS:
                    raise ResourceLimitError(
                        f"array {i}: shape {tuple(shape)} has more than {MAX_ELEMENTS} "
                        "elements (limit MAX_ELEMENTS, zero dimensions aside)"
                    )
            else:
                zero = True
        if nonzero * (itemsize or 1) > MAX_ARRAY_BYTES:
            raise ResourceLimitError(
                f"array {i}: {nonzero * (itemsize or 1)} bytes exceeds the "
                f"{MAX_ARRAY_BYTES}-byte limit (MAX_ARRAY_BYTES)"
            )
        size = 0 if zero else nonzero * itemsize
        namespace, device = places[place_col[i]]
        row: dict[str, Any] = {
            "dtype": dtypes[d],
            "shape": shape,
            "order": order[i],
            "namespace": namespace,
            "device": device,
        }
        meta, codec, path = metas[i], codecs[i], paths[i]
        if meta is not None:
            check_keys(f"array {i}'s meta", meta, META_KEYS, ())
            validate_meta(f"array {i}", meta, parsed[d])
            row["meta"] = meta
        if path is not None:
            if type(path) is not str:
                raise FormatError(f"array {i}: the path is not a string")
            row["path"] = path
        length = lengths[i]
        if codec is not None:
            if codec not in CODECS:
                raise FormatError(f"array {i}: unknown codec {shown(codec)}")
            if size > max(2**20, MAX_RATIO * length):
                raise ResourceLimitError(
                    f"array {i}: {length} compressed bytes cannot honestly expand to {size}"
                )
            row["codec"] = codec
        elif size != length:
            raise IntegrityError(
                f"array {i}: shape {tuple(shape)} of {parsed[d]} needs {size} bytes but "
                f"{length} are declared"
            )
        offset = row["offset"] = offsets[i]
        row["length"] = length
        checksum = checksums[i]
        if checksum is None:  # packed: placed in the pack, after the previous packed one
            if codec is not None:
                raise FormatError(f"array {i}: a packed array is never compressed on its own")
            start = 0 if pack_end is None else -(-pack_end // step) * step
            if offset != start:
                raise IntegrityError(
                    f"array {i} starts at {offset} in the pack, expected {start}: packed "
                    "arrays follow each other in order, without holes or overlaps"
                )
            pack_end = start + length
            row["packed"] = True
        else:
            if type(checksum) is not str or not CHECKSUM_RE.match(checksum):
                raise FormatError(f"array {i}: malformed checksum {shown(checksum)}")
            row["checksum"] = checksum
        rows.append(row)
    return rows, pack_end
