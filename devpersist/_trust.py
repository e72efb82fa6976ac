"""``trusted=``: the names a caller adds to the allowlist for one load.

Read only from the caller, never from the file. Entries become ``"module.qualname"``
strings; a name on the never list (:func:`devpersist._rules.never`) is refused unless it
comes through :func:`dangerously_trust`, so that a careless
``trusted=get_untrusted_types(f)`` can never hand a file code execution. The engine
(:mod:`devpersist._safety`) admits these names before any rule.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from . import _rules
from ._exceptions import UnsafeTrustError


def dotted(name: tuple[str, str]) -> str:
    """``("module", "qualname")`` as ``"module.qualname"``."""
    return f"{name[0]}.{name[1]}"


class DangerouslyTrusted(frozenset[str]):
    """Names trusted although they are on the never list (see :func:`dangerously_trust`)."""


def dangerously_trust(*names: Any) -> DangerouslyTrusted:
    """Mark names for ``trusted=`` that are on the never list (they run code).

    ``load(f, trusted=[dangerously_trust("os.getcwd")])``: a load admits names on the
    never list (``eval``, ``os.*``, ``subprocess.*``...) only through this function, so
    a careless ``trusted=get_untrusted_types(f)`` cannot hand a file code execution.
    Only use it for a file whose author you trust as much as code you run.

    Parameters
    ----------
    *names : str, tuple, type or function
        ``"module.qualname"`` strings, ``(module, qualname)`` pairs, or the objects.

    Returns
    -------
    DangerouslyTrusted
        To pass inside ``trusted=[...]``.
    """
    return DangerouslyTrusted(_trusted_names(names, dangerous=True))


def _trusted_names(items: Iterable[Any], dangerous: bool) -> set[str]:
    out: set[str] = set()
    for item in items:
        if isinstance(item, DangerouslyTrusted):
            out |= item
            continue
        if isinstance(item, str):
            name = item
        elif isinstance(item, tuple) and len(item) == 2 and all(isinstance(p, str) for p in item):
            name = dotted(item)
        elif hasattr(item, "__module__") and hasattr(item, "__qualname__"):
            name = f"{item.__module__}.{item.__qualname__}"
        else:
            raise TypeError(
                f"trusted entries are 'module.qualname' names, types or functions, not {item!r}"
            )
        why = None if dangerous else _rules.never(name)
        if why is not None:
            raise UnsafeTrustError(
                f"trusted= names {name!r}, which is on the never list ({why}); pass "
                f"devpersist.dangerously_trust({name!r}) if you really mean to let the "
                "file run it",
                name=name,
            )
        out.add(name)
    return out


def normalize_trusted(trusted: Any) -> frozenset[str]:
    """``trusted`` entries as ``"module.qualname"`` strings (types and functions too).

    Names on the never list raise :class:`UnsafeTrustError` unless they come through
    :func:`dangerously_trust`.
    """
    if trusted is None:
        return frozenset()
    if isinstance(trusted, DangerouslyTrusted):
        return frozenset(trusted)
    if isinstance(trusted, bool) or not isinstance(trusted, (str, type, Iterable)):
        raise TypeError(
            "trusted= takes a list of 'module.qualname' names, types or functions, not "
            f"{trusted!r}: there is no trust-everything switch"
        )
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    return frozenset(_trusted_names(trusted, dangerous=False))


def resolve_trusted(module: str, name: str) -> Any:
    """The object a trusted name refers to (imports its module: the caller vouched)."""
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj
