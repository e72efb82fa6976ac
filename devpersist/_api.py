"""The public verbs, gathered: dump/dumps (:mod:`devpersist._save`), load/loads
(:mod:`devpersist._load`), info/verify/get_untrusted_types/config_context
(:mod:`devpersist._inspect`). Kept so that ``devpersist._api`` names them all in one place.
"""

from __future__ import annotations

from ._inspect import config_context, get_untrusted_types, info, verify
from ._load import load, loads
from ._save import dump, dumps

__all__ = [
    "config_context",
    "dump",
    "dumps",
    "get_untrusted_types",
    "info",
    "load",
    "loads",
    "verify",
]
