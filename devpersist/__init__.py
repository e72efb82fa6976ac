"""devpersist: save and load fitted estimators whose arrays may live on accelerators.

The public API is what this module exports; everything in ``_``-prefixed modules is
private.
"""

from . import presets
from ._api import config_context, dump, dumps, get_untrusted_types, info, load, loads, verify
from ._config import ConfiguredEstimator, ConfigWarning, unwrap
from ._convert import UntrustedSourceWarning, convert
from ._devices import DeviceFallbackWarning
from ._environment import VersionMismatchWarning
from ._exceptions import (
    DeviceError,
    DevpersistError,
    FormatError,
    IntegrityError,
    MissingLibraryError,
    NotDevpersistError,
    RemoteStorageError,
    ResourceLimitError,
    UnsupportedFormatVersionError,
    UnsupportedObjectError,
    UntrustedTypeError,
    VersionMismatchError,
)
from ._format import FORMAT_VERSION
from ._version import __version__

__all__ = [
    "FORMAT_VERSION",
    "ConfigWarning",
    "ConfiguredEstimator",
    "DeviceError",
    "DeviceFallbackWarning",
    "DevpersistError",
    "FormatError",
    "IntegrityError",
    "MissingLibraryError",
    "NotDevpersistError",
    "RemoteStorageError",
    "ResourceLimitError",
    "UnsupportedFormatVersionError",
    "UnsupportedObjectError",
    "UntrustedSourceWarning",
    "UntrustedTypeError",
    "VersionMismatchError",
    "VersionMismatchWarning",
    "__version__",
    "config_context",
    "convert",
    "dump",
    "dumps",
    "get_untrusted_types",
    "info",
    "load",
    "loads",
    "presets",
    "unwrap",
    "verify",
]
