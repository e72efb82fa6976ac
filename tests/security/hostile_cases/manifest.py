"""The manifest: encoding, JSON, types, unknown fields, trust lists inside the file."""

from __future__ import annotations

from collections.abc import Callable

import _hostile as H

from devpersist import FormatError, IntegrityError, ResourceLimitError, UntrustedTypeError
from hostile_cases.build import Case, armed_file, array0, edit, setter


def _deep_json(depth: int) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        data = armed_file(c)
        raw = H.encode_manifest(H.parse(data).manifest)
        return H.with_manifest(
            data, raw=raw[:-1] + b',"object":{"x":' + b"[" * depth + b"]" * depth + b"}}"
        )

    return make


def _raw_manifest(transform: Callable[[bytes], bytes]) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        data = armed_file(c)
        return H.with_manifest(data, raw=transform(H.encode_manifest(H.parse(data).manifest)))

    return make


# 9. The manifest: encoding, JSON, types, unknown fields, trust lists inside the file.
MANIFEST_CASES = [
    Case("manifest-not-utf8", _raw_manifest(lambda raw: b"\xff\xfe" + raw), (FormatError,)),
    Case(
        "manifest-latin1-byte-inside-a-string",
        _raw_manifest(lambda raw: raw.replace(b'"cpu"', b'"cp\xe9"', 1)),
        (FormatError,),
    ),
    Case("manifest-not-json", _raw_manifest(lambda raw: raw[:-1]), (FormatError,)),
    Case("manifest-json-array", _raw_manifest(lambda raw: b"[" + raw + b"]"), (FormatError,)),
    Case("manifest-json-string", _raw_manifest(lambda raw: b'"x"'), (FormatError,)),
    Case("manifest-json-null", _raw_manifest(lambda raw: b"null"), (FormatError,)),
    Case("manifest-utf8-bom", _raw_manifest(lambda raw: b"\xef\xbb\xbf" + raw), (FormatError,)),
    Case("manifest-leading-whitespace", _raw_manifest(lambda raw: b" \n" + raw), (FormatError,)),
    Case(
        "manifest-duplicate-top-level-key",
        _raw_manifest(lambda raw: raw[:-1] + b',"globals":[]}'),
        (FormatError,),
    ),
    Case(
        "manifest-duplicate-key-in-graph-entry",
        _raw_manifest(lambda raw: raw.replace(b'"graph":{', b'"graph":{"offset":0,', 1)),
        (FormatError,),
    ),
    Case(
        "manifest-NaN",
        _raw_manifest(lambda raw: raw[:-1] + b',"object":{"x":NaN}}'),
        (FormatError,),
    ),
    Case(
        "manifest-Infinity",
        _raw_manifest(lambda raw: raw.replace(b'"alignment":64', b'"alignment":Infinity')),
        (FormatError,),
    ),
    Case("manifest-100k-nested-arrays", _deep_json(100_000), (FormatError, ResourceLimitError)),
    Case(
        "manifest-5000-digit-integer",
        _raw_manifest(lambda raw: raw.replace(b'"alignment":64', b'"alignment":' + b"6" * 5000)),
        (FormatError,),
    ),
    Case(
        "manifest-unknown-top-level-field",
        edit(armed_file, lambda m: m.update(extra=1)),
        (FormatError,),
    ),
    Case(
        "manifest-unknown-array-field",
        edit(armed_file, array0(setter(pickled=True))),
        (FormatError,),
    ),
    Case(
        "manifest-unknown-meta-field",
        edit(armed_file, array0(setter(meta={"trusted": True}))),
        (FormatError,),
    ),
    Case(
        "manifest-format-version-differs",
        edit(armed_file, lambda m: m.update(format_version=2)),
        (IntegrityError,),
    ),
    Case(
        "manifest-format-version-string",
        edit(armed_file, lambda m: m.update(format_version="1")),
        (FormatError,),
    ),
    Case(
        "manifest-alignment-32", edit(armed_file, lambda m: m.update(alignment=32)), (FormatError,)
    ),
    Case(
        "manifest-arrays-not-a-list",
        edit(armed_file, lambda m: m.update(arrays={})),
        (FormatError,),
    ),
    Case(
        "manifest-graph-offset-a-string",
        edit(armed_file, lambda m: m["graph"].update(offset="64")),
        (FormatError,),
    ),
    Case(
        "manifest-graph-offset-true",
        edit(armed_file, lambda m: m["graph"].update(offset=True)),
        (FormatError,),
    ),
    Case(
        "manifest-graph-offset-float",
        edit(armed_file, lambda m: m["graph"].update(offset=64.0)),
        (FormatError,),
    ),
    Case(
        "manifest-malformed-checksum",
        edit(armed_file, lambda m: m["graph"].update(checksum="md5:00")),
        (FormatError,),
    ),
    Case(
        "manifest-environment-version-5000-digits",
        edit(
            armed_file,
            lambda m: m.update(
                environment={"python": "3." + "9" * 5000, "packages": {"numpy": "9" * 5000}}
            ),
        ),
        (FormatError,),
    ),
    Case(
        "manifest-environment-unknown-field",
        edit(armed_file, lambda m: m.update(environment={"trusted": ["os.system"]})),
        (FormatError,),
    ),
    # 16. a trust list inside the file is never read
    Case(
        "trust-list-as-a-top-level-key",
        edit(armed_file, lambda m: m.update(trusted=["os.system"])),
        (FormatError,),
    ),
    Case(
        "trust-list-inside-config",
        edit(armed_file, lambda m: m.update(config={"trusted": ["os.system"]})),
        (FormatError,),
    ),
    Case(
        "trust-list-as-a-sklearn-config-value",
        lambda c: armed_file(c, config={"sklearn": {"trusted": "os.system"}}),
        (UntrustedTypeError,),
        (("os", "system"),),
    ),
    Case(
        "trust-list-inside-object-description",  # unknown keys: refused while parsing
        lambda c: armed_file(c, object={"type": "x", "trusted": ["os.system"]}),
        (FormatError,),
    ),
    Case(
        "config-asks-for-array-api-dispatch (no global change for a rejected file)",
        lambda c: armed_file(c, config={"sklearn": {"array_api_dispatch": True}}),
        (UntrustedTypeError,),
        (("os", "system"),),
        quiet=True,
    ),
]
