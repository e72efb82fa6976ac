"""Header and trailer fields, appended and prepended bytes, checksums."""

from __future__ import annotations

import _hostile as H

from devpersist import (
    IntegrityError,
    NotDevpersistError,
    ResourceLimitError,
    UnsupportedFormatVersionError,
)
from hostile_cases.build import Case, armed_file, plain_file
from hostile_cases.foreign import pickle_payload, zip_bytes

# 8. Header and trailer fields.
_CAP = 64 * 2**20
CONTAINER_CASES = [
    Case(
        "header-bad-magic",
        lambda c: H.with_header(armed_file(c), magic=b"\x89DVQ\r\n\x1a\n"),
        (NotDevpersistError,),
    ),
    Case(
        "header-version-3",
        lambda c: H.with_header(armed_file(c), version=3),
        (UnsupportedFormatVersionError,),
    ),
    Case(
        "header-version-max-u32",
        lambda c: H.with_header(armed_file(c), version=2**32 - 1),
        (UnsupportedFormatVersionError,),
    ),
    Case("header-version-0", lambda c: H.with_header(armed_file(c), version=0), (IntegrityError,)),
    Case("header-flags-set", lambda c: H.with_header(armed_file(c), flags=1), (IntegrityError,)),
    Case(
        "trailer-version-differs-from-header",
        lambda c: H.with_trailer(armed_file(c), version=2),
        (IntegrityError,),
    ),
    Case(
        "trailer-end-magic",
        lambda c: H.with_trailer(armed_file(c), end=b"DVP1END\r"),
        (IntegrityError,),
    ),
    Case(
        "trailer-reserved-set",
        lambda c: H.with_trailer(armed_file(c), reserved=1),
        (IntegrityError,),
    ),
    Case(
        "manifest-length-past-the-file",
        lambda c: H.with_trailer(armed_file(c), length=len(armed_file(c))),
        (IntegrityError,),
    ),
    Case(
        "manifest-length-past-the-cap",
        lambda c: H.with_trailer(armed_file(c), length=_CAP + 1),
        (ResourceLimitError,),
    ),
    Case(
        "manifest-length-u64-max",
        lambda c: H.with_trailer(armed_file(c), length=2**64 - 1),
        (ResourceLimitError,),
    ),
    Case(
        "manifest-offset-u64-max",
        lambda c: H.with_trailer(armed_file(c), offset=2**64 - 64),
        (IntegrityError,),
    ),
    Case(
        "manifest-offset-plus-length-wraps-to-file-size",
        lambda c: H.with_trailer(
            armed_file(c), offset=2**64 - 64, length=len(armed_file(c)) - 40 + 64
        ),
        (IntegrityError,),
    ),
    Case("manifest-offset-0", lambda c: H.with_trailer(armed_file(c), offset=0), (IntegrityError,)),
    Case(
        "manifest-offset-unaligned",
        lambda c: H.with_trailer(
            armed_file(c),
            offset=H.parse(armed_file(c)).manifest_offset + 1,
            length=H.parse(armed_file(c)).manifest_length - 1,
        ),
        (IntegrityError,),
    ),
    Case(
        "manifest-checksum-mismatch",
        lambda c: H.with_trailer(
            armed_file(c), checksum=H.parse(armed_file(c)).manifest_checksum ^ 1
        ),
        (IntegrityError,),
    ),
    Case("one-byte-appended", lambda c: armed_file(c) + b"\x00", (IntegrityError,)),
    Case("64-zero-bytes-appended", lambda c: armed_file(c) + bytes(64), (IntegrityError,)),
    Case("a-second-file-appended", lambda c: armed_file(c) + armed_file(c), (IntegrityError,)),
    Case("a-zip-appended (polyglot)", lambda c: armed_file(c) + zip_bytes(), (IntegrityError,)),
    Case("one-byte-prepended", lambda c: b"\x00" + armed_file(c), (NotDevpersistError,)),
    Case(
        "file-truncated-inside-a-payload-first-graph",
        lambda c: armed_file(c)[: H.parse(armed_file(c)).manifest["graph"]["offset"] + 60],
        (IntegrityError,),
    ),
    Case("header-only", lambda c: armed_file(c)[:16], (IntegrityError,)),
    Case("magic-only", lambda c: armed_file(c)[:8], (IntegrityError,)),
    Case(
        "non-zero-padding-after-header",
        lambda c: H.patch(armed_file(c), 20, b"\x01"),
        (IntegrityError,),
    ),
    Case(
        "non-zero-padding-after-graph",
        lambda c: H.patch(
            armed_file(c), H.parse(armed_file(c)).manifest["arrays"][0]["offset"] - 1, b"\x01"
        ),
        (IntegrityError,),
    ),
    Case(
        "graph-checksum-mismatch",
        lambda c: H.flip(armed_file(c), H.parse(armed_file(c)).manifest["graph"]["offset"] + 5),
        (IntegrityError,),
    ),
    Case(
        "array-checksum-mismatch",
        lambda c: H.flip(plain_file(c), H.parse(plain_file(c)).manifest["arrays"][0]["offset"]),
        (IntegrityError,),
    ),
    Case(
        "devpersist-magic-then-a-pickle",
        lambda c: (
            H.with_header(bytes(16), magic=b"\x89DVP\r\n\x1a\n", version=1, flags=0)
            + bytes(48)
            + pickle_payload(c)
            + bytes(64)
        ),
        (IntegrityError,),
    ),
]
