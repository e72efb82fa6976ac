"""Restoring the recorded configuration on load: plan it, set it up, apply it.

Part of the configuration's path (docs/config.md): ``_config`` records and validates
what the model requires; once the placement is decided (``_devices``), :func:`plan`
adjusts it to where the arrays went (arrays converted to numpy need no dispatch; an
offload target that is not here becomes the host). :func:`environment_for` sets
``SCIPY_ARRAY_API`` before the audit imports scikit-learn when the model needs it,
:func:`applied` runs a block under the planned configuration (this thread only), and
``_configured.ConfiguredEstimator`` makes every method of the loaded model do so.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import DeviceError

if TYPE_CHECKING:
    from ._devices import Placement

#: Offload targets that mean the host on every oneDAL build ("cpu" does not: on the DPC++
#: build it names a SYCL CPU device).
HOST_OFFLOAD = ("auto", "host")
#: ``(scikit-learn settings, sklearnex settings)`` to run the loaded model under.
Planned = tuple[dict[str, Any], dict[str, Any]]


class ConfigWarning(UserWarning):
    """The recorded configuration cannot be restored exactly here."""


def plan(config: dict[str, Any] | None, placement: Placement) -> Planned | None:
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
    if isinstance(offload, str) and offload not in HOST_OFFLOAD:
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


def _offload_fallback(offload: str, placement: Placement) -> None:
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


def needs_restoring(planned: Planned) -> bool:
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


def for_building(planned: Planned | None) -> Planned | None:
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
def applied(planned: Planned | None) -> Iterator[None]:
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
