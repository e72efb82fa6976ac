"""Exceptions raised by devpersist.

Every error derives from :class:`DevpersistError` and also from the builtin exception it
semantically is, so ``except ValueError`` keeps working for callers that do not know
devpersist::

    DevpersistError
    ├── FormatError (ValueError)               the bytes are not a valid devpersist file
    │   ├── NotDevpersistError                 ...not devpersist at all (pickle, joblib, ...)
    │   ├── UnsupportedFormatVersionError      ...a newer format than this devpersist reads
    │   └── IntegrityError                     ...truncated, corrupted or tampered with
    ├── UntrustedTypeError (TypeError)         the file names types outside the allowlist
    ├── UnsafeTrustError (ValueError)          trusted= names something on the never list
    ├── UnsupportedObjectError (TypeError)     an object in the graph cannot be saved
    ├── PrecisionLossError (ValueError)        ``precision=`` cannot hold an array's values
    ├── DeviceError (RuntimeError)             an array cannot be placed where asked
    ├── MissingLibraryError (ImportError)      the file needs an array library not installed
    ├── VersionMismatchError (RuntimeError)    strict loading: library versions differ
    └── RemoteStorageError (OSError)           a URL cannot be read or written

    ResourceLimitError (FormatError)           the file exceeds a safety limit (size, depth)

    UntrustedTypeWarning (UserWarning)         a save wrote names a default load refuses
"""

from __future__ import annotations

__all__ = [
    "DeviceError",
    "DevpersistError",
    "FormatError",
    "IntegrityError",
    "MissingLibraryError",
    "NotDevpersistError",
    "PrecisionLossError",
    "RemoteStorageError",
    "ResourceLimitError",
    "UnsupportedFormatVersionError",
    "UnsafeTrustError",
    "UnsupportedObjectError",
    "UntrustedTypeError",
    "UntrustedTypeWarning",
    "VersionMismatchError",
]


def printable(text: str, keep: str = "") -> str:
    """``text`` with every non-printable character (controls, bidirectional overrides,
    unassigned code points...) escaped as ``\\xNN``/``\\uNNNN``: strings a file supplies
    are never printed raw (an ANSI escape sequence could rewrite the terminal)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def shown(value: object, limit: int = 120) -> str:
    """A file-supplied value for a message: ``repr`` (which escapes non-printables),
    cut to ``limit`` characters."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DevpersistError(Exception):
    """Root of every error raised by devpersist."""


class FormatError(DevpersistError, ValueError):
    """The data is not a valid devpersist file."""


class NotDevpersistError(FormatError):
    """The data is not a devpersist file at all; the message says what it looks like."""


class UnsupportedFormatVersionError(FormatError):
    """The file was written in a newer format version than this devpersist reads."""


class IntegrityError(FormatError):
    """The file is truncated, has extra bytes, or a checksum does not match."""


class ResourceLimitError(FormatError):
    """The file exceeds a safety limit (manifest size, nesting depth, object count...)."""


class UntrustedTypeError(DevpersistError, TypeError):
    """The file refers to types or functions outside the allowlist.

    ``untrusted`` lists the offending names as ``"module.qualname"`` strings and
    ``reasons`` maps each to why it is refused. A name you have checked can be passed as
    ``trusted=[...]`` to :func:`devpersist.load` (names on the never list cannot).
    """

    def __init__(
        self,
        message: str,
        untrusted: list[str] | None = None,
        reasons: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.untrusted = list(untrusted or [])
        self.reasons = dict(reasons or {})


class UnsafeTrustError(DevpersistError, ValueError):
    """``trusted=`` names something on the never list (it runs code, reaches the system).

    ``name`` is the entry; :func:`devpersist.dangerously_trust` is the only way to pass it.
    """

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class UntrustedTypeWarning(UserWarning):
    """A save wrote a file that a default :func:`devpersist.load` refuses.

    ``untrusted`` maps each name the load would refuse to the reason.
    """

    def __init__(self, message: str, untrusted: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.untrusted = dict(untrusted or {})


class UnsupportedObjectError(DevpersistError, TypeError):
    """An object in the graph cannot be saved; the message names its attribute path."""

    def __init__(self, message: str, path: str = "", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class PrecisionLossError(DevpersistError, ValueError):
    """``precision=`` cannot hold an array's values (they would overflow to inf or vanish).

    ``path`` is the array's attribute path. Nothing was written. Save at full precision,
    or pass ``clamp_precision=True`` to clamp to the storage type's range instead.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class DeviceError(DevpersistError, RuntimeError):
    """An array cannot be placed on the requested device."""


class MissingLibraryError(DevpersistError, ImportError):
    """The file holds arrays of a library that is not installed."""


class VersionMismatchError(DevpersistError, RuntimeError):
    """``strict=True`` loading and the file's library versions break the policy."""


class RemoteStorageError(DevpersistError, OSError):
    """A URL could not be read or written (missing, no credentials, unreachable)."""
