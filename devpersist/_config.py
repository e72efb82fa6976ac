"""The scikit-learn / sklearnex configuration travels with the model (docs/config.md).

On dump two things are recorded in the manifest's ``config``: what *the model requires*,
derived from its own state (``required``: an estimator holding non-numpy array-API
arrays needs ``array_api_dispatch=True``; the namespaces and devices that make it so, per
estimator), and, for information, what was *in force at dump* (``sklearn``: the whole
``sklearn.get_config()``; ``sklearnex``: its offload settings; ``scipy_array_api``).
Users fit inside ``config_context`` and save outside it, so the second alone is wrong.

On load the requirement is *adjusted to the placement* (arrays converted to numpy need no
array API dispatch; an offload target that is not here becomes the host) and, when it
differs from scikit-learn's defaults, the loaded estimator is returned inside a
:class:`ConfiguredEstimator`: every method call runs under ``config_context(**planned)``,
in whichever thread makes it, because scikit-learn's configuration is thread-local and a
``set_config`` in the main thread would not reach a server's worker threads. Nothing
global is changed, except setting ``SCIPY_ARRAY_API=1`` when the model needs it and scipy
is not imported yet (scipy reads it once, at import). Files written before ``required``
existed restore the configuration in force at dump, as they always did.

This module records and validates; restoring is ``_config_plan`` (plan, environment,
``applied``) and ``_configured`` (the proxy). Their names are re-exported here, the one
place the rest of the package imports the configuration from.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ._config_plan import (
    HOST_OFFLOAD,
    ConfigWarning,
    Planned,
    applied,
    environment_for,
    for_building,
    needs_dispatch,
    needs_restoring,
    plan,
    prepare_environment,
)
from ._configured import ConfiguredEstimator, unwrap
from ._exceptions import DeviceError, FormatError

if TYPE_CHECKING:
    from ._replay import Name
    from .arrays import ArrayEntry

__all__ = [
    "HOOK",
    "HOST_OFFLOAD",
    "SKLEARNEX_KEYS",
    "ConfigWarning",
    "ConfiguredEstimator",
    "Planned",
    "applied",
    "capture",
    "check_placement",
    "defines_hook",
    "environment_for",
    "for_building",
    "honour_hook",
    "is_estimator",
    "mixed",
    "needs_dispatch",
    "needs_restoring",
    "owner_of",
    "plan",
    "prepare_environment",
    "requirements",
    "unwrap",
    "validate",
]

SKLEARNEX_KEYS = ("target_offload", "allow_fallback_to_host", "allow_sklearn_after_onedal")
_SCALARS = (bool, int, float, str, type(None))

# --------------------------------------------------------------------------- capture


def capture(uses_sklearnex: bool, required: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The configuration for the manifest: what the model requires (``required``, from
    :func:`requirements`; None: nothing) and what is in force in this thread."""
    if "sklearn" not in sys.modules:
        return None
    import sklearn

    recorded: dict[str, Any] = {
        "sklearn": {k: v for k, v in sklearn.get_config().items() if isinstance(v, _SCALARS)},
        "scipy_array_api": os.environ.get("SCIPY_ARRAY_API"),
    }
    if uses_sklearnex and "sklearnex" in sys.modules:
        import sklearnex

        full = sklearnex.get_config()
        recorded["sklearnex"] = {k: _offload_value(full[k]) for k in SKLEARNEX_KEYS if k in full}
    recorded["required"] = required if required is not None else {"sklearn": {}, "estimators": {}}
    return recorded


def _offload_value(value: Any) -> Any:
    """A setting as the manifest stores it: a SYCL queue or device (``target_offload``
    may be one) by its device's filter string, which names it again on load."""
    if isinstance(value, _SCALARS):
        return value
    device = getattr(value, "sycl_device", value)
    filter_string = getattr(device, "filter_string", None)
    return str(filter_string) if isinstance(filter_string, str) else str(value)


def _estimator_paths(root: Any) -> list[str]:
    """The attribute paths (as ``_walk`` spells them) of every scikit-learn estimator in
    the graph, the root included."""
    from ._walk import walk

    base = sys.modules.get("sklearn.base")
    if base is None:
        return []
    found: list[str] = []

    def visit(path: str, obj: Any) -> bool:
        if isinstance(obj, base.BaseEstimator):
            found.append(path)
        return False

    walk(root, visit)
    return found


def owner_of(path: str | None, estimators: list[str]) -> str | None:
    """The innermost estimator path that ``path`` (an array's) lies under."""
    if path is None:
        return None
    best = None
    for candidate in estimators:
        if (path == candidate or path.startswith((candidate + ".", candidate + "["))) and (
            best is None or len(candidate) > len(best)
        ):
            best = candidate
    return best


def requirements(root: Any, arrays: list[ArrayEntry]) -> dict[str, Any]:
    """What the model needs, from its own arrays (``arrays``: the manifest entries).

    Returns ``{"sklearn": {...}, "estimators": {path: [[namespace, device], ...]}}``.
    Any non-numpy array needs ``array_api_dispatch=True``; numpy arrays and no arrays at
    all need nothing. ``estimators`` names, for each estimator holding non-numpy arrays
    (the innermost one when nested), the distinct placements of those arrays: more than
    one is a model that mixes them. Arrays outside any estimator (a dict of tensors)
    need dispatch too, but belong to no estimator.
    """
    foreign = [a for a in arrays if a["namespace"] != "numpy"]
    if not foreign:
        return {"sklearn": {}, "estimators": {}}
    estimators = _estimator_paths(root)
    by_owner: dict[str, list[list[str]]] = {}
    for entry in foreign:
        owner = owner_of(entry.get("path"), estimators)
        if owner is None:
            continue
        placement = [entry["namespace"], entry["device"]]
        if placement not in by_owner.setdefault(owner, []):
            by_owner[owner].append(placement)
    return {
        "sklearn": {"array_api_dispatch": True},
        "estimators": {k: sorted(v) for k, v in sorted(by_owner.items())},
    }


def check_placement(
    config: dict[str, Any] | None, entries: list[ArrayEntry], planned: list[tuple[str, str]]
) -> None:
    """Refuse a placement that leaves one estimator's arrays in several array libraries
    (no computation can combine them), naming the attribute paths; runs before anything
    is read or built. Several devices of one library are allowed: sklearnex keeps small
    arrays on the host next to device arrays (SVC's ``_probA``), and works so."""
    required = (config or {}).get("required") or {}
    estimators = list(required.get("estimators", {}))
    if not estimators:
        return
    groups: dict[str, dict[tuple[str, str], list[str]]] = {}
    for index, (entry, place) in enumerate(zip(entries, planned)):
        if entry["namespace"] == "numpy":  # numpy labels next to device arrays are usual
            continue
        path = entry.get("path")
        owner = owner_of(path, estimators)
        if owner is None:
            continue
        groups.setdefault(owner, {}).setdefault(place, []).append(path or f"array {index}")
    for owner, places in sorted(groups.items()):
        if len({library for library, _ in places}) > 1:
            lines = "; ".join(
                f"{library} {device}: {', '.join(paths[:5])}"
                + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
                for (library, device), paths in sorted(places.items())
            )
            raise DeviceError(
                f"this placement leaves {owner}'s arrays in different array libraries "
                f"({lines}), which no computation can combine; load with "
                "namespace='numpy' (or another namespace=) to put them in one"
            )


HOOK = "__sklearn_array_api_convert__"


def defines_hook(approved: dict[Name, Any]) -> bool:
    """Does any class the file names define scikit-learn's conversion hook?"""
    return any(isinstance(v, type) and hasattr(v, HOOK) for v in approved.values())


def honour_hook(obj: Any) -> Any:
    """Let estimators that define ``__sklearn_array_api_convert__(converter)`` convert
    themselves after a load that moved their arrays, as ``move_estimator_to`` would: the
    graph is walked the way scikit-learn walks it (estimators' attributes, dicts, lists,
    tuples) and each such object is replaced by what its hook returns. Every array is
    already placed by then, so the converter hands arrays back as they are."""

    def converter(array: Any) -> Any:
        return array

    seen: set[int] = set()

    def visit(node: Any) -> Any:
        if id(node) in seen or isinstance(node, type):
            return node
        seen.add(id(node))
        if hasattr(node, HOOK):
            return getattr(node, HOOK)(converter)
        if type(node) is dict:
            for key, value in node.items():
                node[key] = visit(value)
        elif type(node) is list:
            node[:] = [visit(v) for v in node]
        elif type(node) is tuple:
            return tuple(visit(v) for v in node)
        elif is_estimator(node):
            for key, value in vars(node).items():
                new = visit(value)
                if new is not value:
                    setattr(node, key, new)
        return node

    return visit(obj)


def mixed(config: dict[str, Any] | None) -> dict[str, list[list[str]]]:
    """The estimators whose non-numpy arrays were saved on more than one placement."""
    required = (config or {}).get("required") or {}
    return {k: v for k, v in required.get("estimators", {}).items() if len(v) > 1}


def validate(config: Any) -> None:
    """A malformed recorded configuration is a format error (checked before loading)."""
    if not isinstance(config, dict):
        raise FormatError("the manifest's config is not an object")
    unknown = set(config) - {"sklearn", "sklearnex", "scipy_array_api", "required"}
    if unknown:
        raise FormatError(f"unknown keys in the manifest's config: {sorted(unknown)}")
    for part in ("sklearn", "sklearnex"):
        _check_scalars(config.get(part, {}), part)
    if not isinstance(config.get("scipy_array_api"), (str, type(None))):
        raise FormatError("the manifest's scipy_array_api must be a string or null")
    if "required" in config:
        _validate_required(config["required"])


def _check_scalars(section: Any, part: str) -> None:
    if not isinstance(section, dict) or not all(
        isinstance(k, str) and isinstance(v, _SCALARS) and len(str(v)) <= 256
        for k, v in section.items()
    ):
        raise FormatError(f"the manifest's {part} config must map names to scalars")


def _validate_required(required: Any) -> None:
    if not isinstance(required, dict) or set(required) - {"sklearn", "estimators"}:
        raise FormatError("the manifest's config.required must have only sklearn, estimators")
    _check_scalars(required.get("sklearn", {}), "required sklearn")
    estimators = required.get("estimators", {})
    if not isinstance(estimators, dict) or not all(
        isinstance(path, str)
        and len(path) <= 4096
        and isinstance(places, list)
        and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in places
        )
        for path, places in estimators.items()
    ):
        raise FormatError(
            "the manifest's config.required.estimators must map paths to [namespace, device] pairs"
        )


def is_estimator(obj: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(obj, base.BaseEstimator)
