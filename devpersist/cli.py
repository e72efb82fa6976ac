"""The ``devpersist`` command line: info, verify, convert, diff.

None of them builds anything from a file: ``info`` reads the manifest, ``diff`` replays
the object graph with inert records (see ``_diff``), ``convert`` says when a source can
run code.

Exit codes: 0 success; 1 the file failed verification, or ``diff`` found differences;
2 usage error; 3 the file is missing, unreadable or not a valid devpersist file.
Errors print one line on stderr; ``--debug`` shows the traceback. Every string that
comes from a file is printed with its non-printable characters escaped (``\\x1b``):
a manifest cannot send escape sequences to the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._diff import natural_key
from ._exceptions import printable
from .arrays import decoded_size

if TYPE_CHECKING:
    from .arrays import ArrayEntry

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _p(value: Any) -> str:
    """A value from a file, printable: non-printable characters escaped."""
    return printable(str(value))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[_p(c) for c in header]] + [[_p(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def _array_row(index: int, entry: ArrayEntry) -> tuple[str, ...]:
    dtype = entry["dtype"] if isinstance(entry["dtype"], str) else "structured"
    return (
        entry.get("path", f"#{index}"),
        entry["namespace"],
        entry.get("meta", {}).get("dtype", dtype),
        "x".join(map(str, entry["shape"])) or "()",
        entry["device"],
        _size(decoded_size(entry)),
        entry.get("codec", ""),
    )


def _info(args: argparse.Namespace) -> int:
    import devpersist

    meta = devpersist.info(args.file)
    meta["untrusted"] = devpersist.get_untrusted_types(args.file)
    if args.json:
        print(json.dumps(meta, indent=2, sort_keys=True))
        return EXIT_OK
    env = meta.get("environment", {})
    kind = meta.get("object", {}).get("type", "?")
    print(f"{_p(args.file)}: {_p(kind)}")
    print(f"  format version {meta['format_version']}, {_size(meta['file_size'])}, "
          f"{len(meta['arrays'])} arrays; checksums of the manifest verified, "
          "arrays not read (run 'devpersist verify')")  # fmt: skip
    print(f"  saved with Python {_p(env.get('python', '?'))} on {_p(env.get('platform', '?'))}")
    packages = env.get("packages", {})
    print("  " + ", ".join(f"{_p(k)} {_p(v)}" for k, v in sorted(packages.items())))
    for device, name in sorted(env.get("devices", {}).items()):
        print(f"  device {_p(device)}: {_p(name)}")
    config = meta.get("config") or {}
    changed = {
        k: v
        for k, v in config.get("sklearn", {}).items()
        if k in ("array_api_dispatch", "transform_output", "assume_finite")
    }
    if config:
        print(f"  config: {json.dumps({**changed, **config.get('sklearnex', {})})}, "
              f"SCIPY_ARRAY_API={_p(config.get('scipy_array_api'))}")  # fmt: skip
    for key, value in (meta.get("metadata") or {}).items():
        text = printable(json.dumps(value, ensure_ascii=False))
        print(f"  metadata {printable(key)}: {text}")
    print(
        "  untrusted types: "
        + (", ".join(map(_p, meta["untrusted"])) or "none (loads with the default allowlist)")
    )
    if meta["arrays"]:
        rows = [_array_row(i, a) for i, a in enumerate(meta["arrays"])]
        shown = rows if args.all or len(rows) <= 30 else rows[:30]
        print()
        print(table(shown, ("path", "namespace", "dtype", "shape", "device", "size", "codec")))
        if len(shown) < len(rows):
            print(f"... {len(rows) - len(shown)} more arrays (--all shows them)")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    import devpersist

    try:
        report = devpersist.verify(args.file)
    except devpersist.FormatError as exc:
        print(f"{_p(args.file)}: FAILED: {printable(str(exc), keep=chr(10))}", file=sys.stderr)
        return EXIT_FAILED
    size = _size(report["bytes"])
    print(f"{_p(args.file)}: OK ({report['arrays']} arrays, {size}, every checksum verified)")
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    from ._convert import convert

    compress = int(args.compress) if (args.compress or "").isdigit() else args.compress
    meta = convert(args.src, args.dst, device=args.device, namespace=args.namespace,
                   compress=compress, precision=args.precision, trusted=args.trust)  # fmt: skip
    kind, count, size = meta["object"]["type"], len(meta["arrays"]), _size(meta["file_size"])
    print(f"wrote {_p(args.dst)}: {_p(kind)}, {count} arrays, {size}")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    import devpersist

    a, b = devpersist.info(args.a), devpersist.info(args.b)
    lines: list[str] = []
    if a["object"] != b["object"]:
        lines.append(f"object: {a['object']['type']} -> {b['object']['type']}")
    if a["format_version"] != b["format_version"]:
        lines.append(f"format version: {a['format_version']} -> {b['format_version']}")
    ea, eb = a.get("environment", {}), b.get("environment", {})
    for key in ("python", "platform"):
        if ea.get(key) != eb.get(key):
            lines.append(f"{key}: {ea.get(key)} -> {eb.get(key)}")
    for section in ("packages", "devices"):
        pa, pb = ea.get(section, {}), eb.get(section, {})
        for key in sorted(set(pa) | set(pb)):
            if pa.get(key) != pb.get(key):
                lines.append(f"{section[:-1]} {key}: {pa.get(key, '-')} -> {pb.get(key, '-')}")
    ca, cb = a.get("config") or {}, b.get("config") or {}
    for part in ("sklearn", "sklearnex"):
        sa, sb = ca.get(part, {}), cb.get(part, {})
        for key in sorted(set(sa) | set(sb)):
            if sa.get(key) != sb.get(key):
                lines.append(f"config {key}: {sa.get(key, '-')} -> {sb.get(key, '-')}")
    lines += _values_differ(args.a, args.b)
    digests_a, digests_b = _digests(args.a), _digests(args.b)
    arrays_a = {x.get("path", f"#{i}"): (x, digests_a[i]) for i, x in enumerate(a["arrays"])}
    arrays_b = {x.get("path", f"#{i}"): (x, digests_b[i]) for i, x in enumerate(b["arrays"])}
    for path in sorted(set(arrays_a) | set(arrays_b), key=natural_key):
        if path not in arrays_a or path not in arrays_b:
            lines.append(f"array {path}: only in {args.a if path in arrays_a else args.b}")
            continue
        (xa, digest_a), (xb, digest_b) = arrays_a[path], arrays_b[path]
        for key in ("namespace", "dtype", "shape", "device", "codec"):
            if xa.get(key) != xb.get(key):
                lines.append(f"array {path}: {key} {xa.get(key)} -> {xb.get(key)}")
        if (
            xa.get("codec") == xb.get("codec")
            and digest_a != digest_b
            and xa["dtype"] == xb["dtype"]
        ):
            lines.append(f"array {path}: values differ")
    print("\n".join(map(_p, lines)) if lines else "no differences")
    return EXIT_FAILED if lines else EXIT_OK


def _digests(file: str) -> list[str]:
    """Each array's stored checksum; a packed array's (format 2) is computed from its
    bytes in the pack, which is read and verified once."""
    import xxhash

    from ._format import Container, checksum_text
    from ._load import open_source

    with open_source(file, whole=False) as source:
        container = Container.open(source)
        return [
            entry["checksum"]
            if "checksum" in entry
            else checksum_text(xxhash.xxh3_64_intdigest(container.array_view(i)))
            for i, entry in enumerate(container.arrays)
        ]


def _values_differ(a: str, b: str) -> list[str]:
    """Parameters and non-array attributes that differ, read without building anything."""
    from . import _diff
    from ._format import Container
    from ._graph import audit
    from ._load import open_source

    flat = []
    for file in (a, b):
        with open_source(file, whole=False) as source:
            container = Container.open(source)
            graph = container.graph()
        audit(graph, len(container.arrays))  # limits and validity, before the replay
        flat.append(_diff.flatten(_diff.replay(graph)))
    return _diff.compare(flat[0], flat[1], (a, b))


DESCRIPTION = (
    "Inspect, verify, convert and compare devpersist files without loading them "
    "(nothing from a file is imported or built)."
)


def parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = argparse.ArgumentParser(prog="devpersist", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"devpersist {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="what a file holds, without loading it")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--all", action="store_true", help="list every array")
    info.set_defaults(run=_info)
    verify = sub.add_parser("verify", help="check every checksum and the structure (exit 0/1)")
    verify.add_argument("file")
    verify.set_defaults(run=_verify)
    conv = sub.add_parser("convert", help="from pickle, joblib, skops or devpersist to devpersist")
    conv.add_argument("src")
    conv.add_argument("dst")
    conv.add_argument("--device", help="place arrays on this device (e.g. cpu)")
    conv.add_argument("--namespace", help="convert arrays to this library (e.g. numpy)")
    conv.add_argument(
        "--compress",
        metavar="CODEC[:LEVEL]",
        help="zstd, lz4, zlib, lzma (or gzip, xz), optionally with a level (zstd:19); "
        "a number alone is a zlib level (0: off)",
    )
    conv.add_argument("--precision", choices=("float16", "bfloat16"))
    conv.add_argument(
        "--trust", action="append", metavar="NAME", help="a type to trust (repeatable)"
    )
    conv.set_defaults(run=_convert)
    diff = sub.add_parser(
        "diff",
        help="what differs between two files: parameters, attributes, arrays, versions "
        "(exit 1 if anything)",
    )
    diff.add_argument("a")
    diff.add_argument("b")
    diff.set_defaults(run=_diff)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # argparse already printed one line of usage error
        return EXIT_USAGE if exc.code else EXIT_OK
    import warnings

    from ._exceptions import DevpersistError

    def one_line(message: Any, category: type, *_: Any, **__: Any) -> None:
        text = printable(str(message), keep=chr(10))
        print(f"devpersist {args.command}: warning: {text}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = one_line
            return int(args.run(args))
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return EXIT_OK
    except (DevpersistError, OSError, ValueError, TypeError) as exc:
        if args.debug:
            raise
        print(f"devpersist {args.command}: error: {printable(str(exc), keep=chr(10))}",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    except Exception as exc:  # a bug in devpersist: still one line, never a traceback
        if args.debug:
            raise
        text = printable(f"{type(exc).__name__}: {exc}")
        print(f"devpersist {args.command}: internal error ({text}); this is a bug, "
              "please report it (--debug shows the traceback)", file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
