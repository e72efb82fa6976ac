"""devpersist: save and load fitted estimators whose arrays may live on accelerators.

The public API is what this module exports; everything in ``_``-prefixed modules is
private.
"""

from ._api import dump, dumps, get_untrusted_types, info, load, loads
from ._devices import DeviceFallbackWarning
from ._exceptions import (
    DeviceError,
    DevpersistError,
    FormatError,
    IntegrityError,
    MissingLibraryError,
    NotDevpersistError,
    ResourceLimitError,
    UnsupportedFormatVersionError,
    UnsupportedObjectError,
    UntrustedTypeError,
)
from ._format import FORMAT_VERSION
from ._version import __version__

__all__ = [
    "FORMAT_VERSION",
    "DeviceError",
    "DeviceFallbackWarning",
    "DevpersistError",
    "FormatError",
    "IntegrityError",
    "MissingLibraryError",
    "NotDevpersistError",
    "ResourceLimitError",
    "UnsupportedFormatVersionError",
    "UnsupportedObjectError",
    "UntrustedTypeError",
    "__version__",
    "dump",
    "dumps",
    "get_untrusted_types",
    "info",
    "load",
    "loads",
]
