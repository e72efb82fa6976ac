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
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import types
import warnings
from collections.abc import Iterator
from typing import Any

from ._exceptions import DeviceError, FormatError

SKLEARNEX_KEYS = ("target_offload", "allow_fallback_to_host", "allow_sklearn_after_onedal")
_SCALARS = (bool, int, float, str, type(None))
#: Offload targets that mean the host on every oneDAL build ("cpu" does not: on the DPC++
#: build it names a SYCL CPU device).
_HOST_OFFLOAD = ("auto", "host")


class ConfigWarning(UserWarning):
    """The recorded configuration cannot be restored exactly here."""


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


def requirements(root: Any, arrays: list[dict[str, Any]]) -> dict[str, Any]:
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
    config: dict[str, Any] | None, entries: list[dict[str, Any]], planned: list[tuple[str, str]]
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


def defines_hook(approved: dict[Any, Any]) -> bool:
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


# --------------------------------------------------------------------------- planning


def plan(
    config: dict[str, Any] | None, placement: Any
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The configuration to run the loaded model under, adjusted to where its arrays went.

    Returns ``(sklearn_config, sklearnex_config)``, or None when there is nothing
    recorded. Keys this scikit-learn does not know are dropped with one warning.
    """
    if not config:
        return None
    import sklearn

    known = sklearn.get_config()
    required = config.get("required")
    # files that record the requirement restore it; older ones, what was in force
    recorded = required.get("sklearn", {}) if required is not None else config.get("sklearn", {})
    sk = {k: v for k, v in recorded.items() if k in known}
    unknown = sorted(set(recorded) - set(known))
    if unknown:
        warnings.warn(
            f"the file records scikit-learn settings this version does not know: {unknown}; "
            "they are ignored (saved by a newer scikit-learn?)",
            ConfigWarning,
            stacklevel=4,
        )
    skx = dict(config.get("sklearnex", {}))
    to_host = placement.namespace == "numpy" or placement.device in ("cpu", "CPU_DEVICE")
    planned = getattr(placement, "planned", None) or []
    if placement.namespace == "numpy" or (planned and all(lib == "numpy" for lib, _ in planned)):
        sk["array_api_dispatch"] = False  # plain numpy arrays: no dispatch needed
    offload = skx.get("target_offload")
    if isinstance(offload, str) and offload not in _HOST_OFFLOAD:
        # "auto" runs where the (host) data is, and is valid on every oneDAL build
        if to_host:
            skx["target_offload"] = "auto"  # the host was asked for
        elif not _offload_available(offload):
            _offload_fallback(offload, placement)
            skx["target_offload"] = "auto"
    if sk.get("array_api_dispatch") and os.environ.get("SCIPY_ARRAY_API") != "1":
        _warn_late_scipy()
    return sk, skx


def _offload_available(name: str) -> bool:
    """Can sklearnex offload to ``name`` here? Needs oneDAL's DPC++ backend (the
    ``scikit-learn-intelex-gpu`` build) and a SYCL device that ``name`` selects: on that
    build ``"cpu"`` names a SYCL CPU device, not the host."""
    onedal = sys.modules.get("onedal")
    if onedal is None or getattr(onedal, "_dpc_backend", None) is None:
        return False
    try:
        import dpctl

        dpctl.SyclDevice(name)
    except Exception:  # dpctl's SyclDeviceCreationError, or dpctl missing
        return False
    return True


def _offload_fallback(offload: str, placement: Any) -> None:
    """The placement rules for an offload target that is not here: an error with
    ``fallback="raise"``, else the host with the placement warning."""
    from ._devices import DeviceFallbackWarning

    name = offload[:64]
    if getattr(placement, "fallback", "host") == "raise":
        raise DeviceError(
            f"the model was fitted with sklearnex target_offload={name!r}, a SYCL device "
            "that does not exist here (or this sklearnex has no DPC++ backend); load with "
            "fallback='host' to run it on the host"
        )
    warnings.warn(
        f"the model was fitted with sklearnex target_offload={name!r}, a SYCL device that "
        "does not exist here (or this sklearnex has no DPC++ backend): it runs on the host "
        "(target_offload='auto'). Pass fallback='raise' to make this an error.",
        DeviceFallbackWarning,
        stacklevel=5,
    )


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    """scikit-learn's defaults as a fresh thread sees them (ignores set_config here)."""
    import sklearn

    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(sklearn.get_config()))
    thread.start()
    thread.join()
    return out


_SKLEARNEX_DEFAULTS = {
    "target_offload": "auto",
    "allow_fallback_to_host": False,
    "allow_sklearn_after_onedal": True,
}


def needs_restoring(planned: tuple[dict[str, Any], dict[str, Any]]) -> bool:
    sk, skx = planned
    defaults = _defaults()
    return any(defaults.get(k) != v for k, v in sk.items()) or any(
        _SKLEARNEX_DEFAULTS.get(k) != v for k, v in skx.items()
    )


def prepare_environment(config: dict[str, Any] | None, namespace: str | None) -> None:
    """Set SCIPY_ARRAY_API when the model needs it, before scikit-learn is imported.

    Runs before the audit imports anything, so it reads the recorded configuration
    directly: a model converted to numpy needs no array API dispatch.
    """
    if not config or namespace == "numpy":
        return
    if not needs_dispatch(config):
        return
    if os.environ.get("SCIPY_ARRAY_API") == "1":
        return
    if "scipy" in sys.modules:
        # setting it now would only fool scikit-learn's check: scipy stays without
        # array API support, so the environment is left as it is. plan() warns once the
        # placement is known, if the model still needs dispatch there (arrays that fall
        # back to numpy, a dpnp model on a host without a SYCL device, do not)
        return
    os.environ["SCIPY_ARRAY_API"] = "1"


def _warn_late_scipy() -> None:
    warnings.warn(
        "this model runs with array_api_dispatch=True, which needs SCIPY_ARRAY_API=1, "
        "but scipy was imported before it was set, and scipy reads it only at import: "
        "scipy functions will not accept non-numpy arrays. Set SCIPY_ARRAY_API=1 in "
        "the environment before starting Python, or load with namespace='numpy'.",
        ConfigWarning,
        stacklevel=5,
    )


def needs_dispatch(config: dict[str, Any]) -> bool:
    """Does the recorded model need ``array_api_dispatch`` (before any placement)?"""
    required = config.get("required")
    section = required.get("sklearn", {}) if required is not None else config.get("sklearn", {})
    return bool(section.get("array_api_dispatch"))


@contextlib.contextmanager
def environment_for(config: dict[str, Any] | None, namespace: str | None) -> Iterator[None]:
    """Set SCIPY_ARRAY_API for the imports in the block when the model needs it, and
    take it back if the block fails (a rejected file leaves the environment as it was)."""
    before = os.environ.get("SCIPY_ARRAY_API")
    prepare_environment(config, namespace)
    try:
        yield
    except BaseException:
        if os.environ.get("SCIPY_ARRAY_API") != before:  # untouched: nothing to undo
            if before is None:
                os.environ.pop("SCIPY_ARRAY_API", None)
            else:
                os.environ["SCIPY_ARRAY_API"] = before
        raise


def for_building(
    planned: tuple[dict[str, Any], dict[str, Any]] | None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The configuration to build the object under: without ``array_api_dispatch`` when
    scikit-learn would refuse it here (SCIPY_ARRAY_API not set, already warned), so the
    load completes and the estimator's methods raise scikit-learn's own explanation."""
    if not planned or not planned[0].get("array_api_dispatch"):
        return planned
    if os.environ.get("SCIPY_ARRAY_API") == "1":
        return planned
    sk, skx = planned
    return {**sk, "array_api_dispatch": False}, skx


@contextlib.contextmanager
def applied(planned: tuple[dict[str, Any], dict[str, Any]] | None) -> Iterator[None]:
    """Run the block under the planned configuration (this thread only)."""
    if not planned:
        yield
        return
    sk, skx = planned
    if skx:
        try:
            import sklearnex
        except ImportError:  # no sklearnex here: its settings cannot apply
            pass
        else:
            with sklearnex.config_context(**sk, **skx):
                yield
            return
    import sklearn

    with sklearn.config_context(**sk):
        yield


# --------------------------------------------------------------------------- the proxy


class ConfiguredEstimator:
    """A loaded estimator whose every method runs under its recorded configuration.

    ``isinstance(obj, type(estimator))`` holds, attributes read and write through, and
    the raw estimator is ``obj.__wrapped__`` (or ``devpersist.unwrap(obj)``).
    """

    __slots__ = ("__wrapped__", "_devpersist_config")

    def __init__(self, estimator: Any, planned: tuple[dict[str, Any], dict[str, Any]]) -> None:
        object.__setattr__(self, "__wrapped__", estimator)
        object.__setattr__(self, "_devpersist_config", planned)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() falls back to __class__
        return type(self.__wrapped__)

    @property
    def devpersist_config(self) -> dict[str, Any]:
        """The configuration the methods run under (scikit-learn and sklearnex keys)."""
        sk, skx = self._devpersist_config
        return {**sk, **skx}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__wrapped__, name)
        if isinstance(value, types.MethodType) and value.__self__ is self.__wrapped__:
            return self._configured(value)
        return value

    def _configured(self, method: Any) -> Any:
        planned = self._devpersist_config
        raw = self.__wrapped__

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with applied(planned):
                result = method(*args, **kwargs)
            return self if result is raw else result  # fit() returns self: keep the proxy

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped__, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.__wrapped__, name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__wrapped__)) | {"__wrapped__", "devpersist_config"})

    def __repr__(self) -> str:
        with applied(self._devpersist_config):
            return repr(self.__wrapped__)

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickling it pickles the estimator
        return self.__wrapped__.__reduce_ex__(protocol)

    def __len__(self) -> int:
        return len(self.__wrapped__)

    def __getitem__(self, key: Any) -> Any:  # Pipeline slicing and step access
        return self.__wrapped__[key]

    def __sklearn_tags__(self) -> Any:
        return self.__wrapped__.__sklearn_tags__()


def unwrap(obj: Any) -> Any:
    """The raw estimator inside a :class:`ConfiguredEstimator` (other objects as they are)."""
    if type(obj) is ConfiguredEstimator:
        return obj.__wrapped__
    return obj


def is_estimator(obj: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(obj, base.BaseEstimator)
