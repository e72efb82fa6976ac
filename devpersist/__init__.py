"""devpersist: save and load fitted estimators whose arrays may live on accelerators.

The public API is what this module exports; everything in ``_``-prefixed modules is
private.
"""

from . import presets
from ._api import config_context, dump, dumps, get_untrusted_types, info, load, loads, verify
from ._codecs import CodecFallbackWarning, NotMappedWarning
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
    PrecisionLossError,
    RemoteStorageError,
    ResourceLimitError,
    UnsafeTrustError,
    UnsupportedFormatVersionError,
    UnsupportedObjectError,
    UntrustedTypeError,
    UntrustedTypeWarning,
    VersionMismatchError,
)
from ._format import FORMAT_VERSION
from ._safety import dangerously_trust
from ._version import __version__

__all__ = [
    "FORMAT_VERSION",
    "CodecFallbackWarning",
    "ConfigWarning",
    "ConfiguredEstimator",
    "DeviceError",
    "DeviceFallbackWarning",
    "DevpersistError",
    "FormatError",
    "IntegrityError",
    "MissingLibraryError",
    "NotDevpersistError",
    "NotMappedWarning",
    "PrecisionLossError",
    "RemoteStorageError",
    "ResourceLimitError",
    "UnsafeTrustError",
    "UnsupportedFormatVersionError",
    "UnsupportedObjectError",
    "UntrustedSourceWarning",
    "UntrustedTypeError",
    "UntrustedTypeWarning",
    "VersionMismatchError",
    "VersionMismatchWarning",
    "__version__",
    "config_context",
    "convert",
    "dangerously_trust",
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
