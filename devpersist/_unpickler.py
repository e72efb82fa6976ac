"""Construct: the safe unpickler, which hands out only what the audit approved.

Last step of a load (... -> read -> **construct**). ``find_class`` answers only from the
approved globals (resolved by :mod:`devpersist._safety` after the audit), so even a
stream that behaved differently the second time could not reach anything else; arrays
come from the list the container read, by index. Names with a check in the rule table
(:data:`devpersist._rule_table.CHECKS`) are wrapped so every object they build is
recorded; once the whole graph is built, each check runs once over its batch.
"""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._audit import said
from ._exceptions import (
    DeviceError,
    DevpersistError,
    FormatError,
    IntegrityError,
    MissingLibraryError,
    ResourceLimitError,
    UntrustedTypeError,
)
from ._rule_table import CHECKS, PLACED, Check
from ._validate import checked_class

if TYPE_CHECKING:
    from ._devices import Placement

Name = tuple[str, str]


class SafeUnpickler(pickle.Unpickler):
    """Hands out only the approved globals; arrays come from ``arrays`` by index."""

    def __init__(
        self,
        data: bytes,
        approved: dict[Name, Any],
        arrays: list[Any],
        placement: Placement | None = None,
    ) -> None:
        super().__init__(io.BytesIO(data))
        # the reconstructors that follow the placement get it bound here, explicitly
        self._approved: dict[Name, Any] = {
            key: functools.partial(obj, placement) if key in PLACED else obj
            for key, obj in approved.items()
        }
        self._arrays = arrays
        #: per checked name: its check and the objects it built, in order
        self.built: dict[Name, tuple[Check, list[Any]]] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        try:
            obj = self._approved[key]
        except KeyError:
            raise UntrustedTypeError(
                f"{module}.{name} was not approved by the audit", [f"{module}.{name}"]
            ) from None
        hook = CHECKS.get(key)
        if hook is None:
            return obj
        on, check = hook
        entry = self.built.get(key)
        if entry is None:
            entry = self.built[key] = (check, [])
        if on == "instance":
            return checked_class(obj, entry[1])
        return _tracking(obj, entry[1])

    def persistent_load(self, pid: Any) -> Any:
        return self._arrays[pid]


def _tracking(func: Callable[..., Any], built: list[Any]) -> Callable[..., Any]:
    def construct(*args: Any) -> Any:
        inst = func(*args)
        built.append(inst)
        return inst

    return construct


def load_graph(
    data: bytes,
    approved: dict[Name, Any],
    arrays: list[Any],
    placement: Placement | None = None,
) -> Any:
    """Build the audited graph from the approved globals and the read arrays, then run
    the rule table's checks on what was built.

    Raises
    ------
    FormatError, IntegrityError, ResourceLimitError
        The graph cannot be built, or a check refuses what it built.
    """
    unpickler = SafeUnpickler(data, approved, arrays, placement)
    try:
        obj = unpickler.load()
    except (FormatError, UntrustedTypeError, DeviceError, MissingLibraryError):
        raise  # placement decisions for device objects met while building
    except MemoryError as exc:
        raise ResourceLimitError("building the object needs too much memory") from exc
    except Exception as exc:
        raise FormatError(
            f"the object graph could not be built ({type(exc).__name__}: {said(exc)})"
        ) from exc
    for check, built in unpickler.built.values():
        try:
            check(built)
        except DevpersistError:
            raise
        except Exception as exc:  # state too malformed for the check itself to read
            raise IntegrityError(
                f"a {type(built[0]).__name__} in the file has malformed state "
                f"({type(exc).__name__}: {said(exc)})"
            ) from exc
    return obj
