"""Say what a file that is not a devpersist container looks like, and what to do with it.

Place in the data flow: called by :mod:`devpersist._protocol` when the magic does not
match (the message of :class:`~devpersist.NotDevpersistError`), and by
:mod:`devpersist._convert` to recognise joblib's compressed files.
"""

from __future__ import annotations

MAGIC = b"\x89DVP\r\n\x1a\n"


def is_zlib(head: bytes) -> bool:
    """A zlib stream header (joblib's default compression): 0x78 and a valid check."""
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def sniff(head: bytes) -> str:
    """Say in words what a non-devpersist file looks like, and what to do with it."""
    if not head:
        return "the data is empty"
    if head[:2] == b"PK":
        return (
            "it looks like a zip archive (a skops or torch.save file?); convert it with "
            "devpersist.convert if you trust its source"
        )
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return (
            f"it looks like a pickle stream (protocol {head[1]}), as written by pickle "
            "or joblib; devpersist never unpickles it, convert it with devpersist.convert "
            "if you trust its source"
        )
    if is_zlib(head) or head[:2] == b"ZF" or head[:3] == b"\x1f\x8b\x08":
        return "it looks like a compressed joblib file; convert it if you trust its source"
    if head[:4] == b"\x28\xb5\x2f\xfd" or head[:6] == b"\xfd7zXZ\x00" or head[:3] == b"BZh":
        return "it looks like a compressed file (zstd, xz or bz2), not a devpersist file"
    if len(head) >= 10 and head[8:10] == b'{"':
        return "it looks like a safetensors file; load it with the safetensors library"
    return f"it starts with {head[:8]!r}, not the devpersist magic {MAGIC!r}"
