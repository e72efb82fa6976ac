"""The scikit-learn / sklearnex configuration travels with the model (docs/config.md).

On dump the whole ``sklearn.get_config()``, the sklearnex offload settings (when the
object uses sklearnex) and ``SCIPY_ARRAY_API`` are recorded in the manifest.

On load the configuration is *adjusted to the placement* (arrays converted to numpy
need no array API dispatch; an offload target that is not here becomes the host) and,
when it differs from scikit-learn's defaults, the loaded estimator is returned inside a
:class:`ConfiguredEstimator`: every method call runs under ``config_context(**recorded)``,
in whichever thread makes it, because scikit-learn's configuration is thread-local and a
``set_config`` in the main thread would not reach a server's worker threads. Nothing
global is changed, except setting ``SCIPY_ARRAY_API=1`` when the model needs it and scipy
is not imported yet (scipy reads it once, at import).
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

from ._exceptions import FormatError

SKLEARNEX_KEYS = ("target_offload", "allow_fallback_to_host", "allow_sklearn_after_onedal")
_SCALARS = (bool, int, float, str, type(None))
_HOST_OFFLOAD = ("auto", "cpu", "host")


class ConfigWarning(UserWarning):
    """The recorded configuration cannot be restored exactly here."""


# --------------------------------------------------------------------------- capture


def capture(uses_sklearnex: bool) -> dict[str, Any] | None:
    """The configuration in force in this thread, for the manifest."""
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
        recorded["sklearnex"] = {
            k: full[k] if isinstance(full[k], _SCALARS) else str(full[k])
            for k in SKLEARNEX_KEYS
            if k in full
        }
    return recorded


def validate(config: Any) -> None:
    """A malformed recorded configuration is a format error (checked before loading)."""
    if not isinstance(config, dict):
        raise FormatError("the manifest's config is not an object")
    unknown = set(config) - {"sklearn", "sklearnex", "scipy_array_api"}
    if unknown:
        raise FormatError(f"unknown keys in the manifest's config: {sorted(unknown)}")
    for part in ("sklearn", "sklearnex"):
        section = config.get(part, {})
        if not isinstance(section, dict) or not all(
            isinstance(k, str) and isinstance(v, _SCALARS) and len(str(v)) <= 256
            for k, v in section.items()
        ):
            raise FormatError(f"the manifest's {part} config must map names to scalars")
    if not isinstance(config.get("scipy_array_api"), (str, type(None))):
        raise FormatError("the manifest's scipy_array_api must be a string or null")


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
    sk = {k: v for k, v in config.get("sklearn", {}).items() if k in known}
    unknown = sorted(set(config.get("sklearn", {})) - set(known))
    if unknown:
        warnings.warn(
            f"the file records scikit-learn settings this version does not know: {unknown}; "
            "they are ignored (saved by a newer scikit-learn?)",
            ConfigWarning,
            stacklevel=4,
        )
    skx = dict(config.get("sklearnex", {}))
    to_host = placement.namespace == "numpy" or placement.device in ("cpu", "CPU_DEVICE")
    if placement.namespace == "numpy":
        sk["array_api_dispatch"] = False  # plain numpy arrays: no dispatch needed
    offload = skx.get("target_offload")
    if isinstance(offload, str) and offload not in _HOST_OFFLOAD:
        if to_host or not _sycl_device_exists(offload):
            # "auto" runs where the (host) data is, and is valid on every oneDAL build;
            # "cpu" is refused by builds without the DPC++ backend
            skx["target_offload"] = "auto"
    return sk, skx


def _sycl_device_exists(name: str) -> bool:
    try:
        import dpctl

        dpctl.SyclDevice(name)
    except Exception:
        return False
    return True


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
    if not config.get("sklearn", {}).get("array_api_dispatch"):
        return
    if os.environ.get("SCIPY_ARRAY_API") == "1":
        return
    if "scipy" in sys.modules:
        warnings.warn(
            "this model runs with array_api_dispatch=True, which needs SCIPY_ARRAY_API=1, "
            "but scipy was imported before it was set, and scipy reads it only at import: "
            "scipy functions will not accept non-numpy arrays. Set SCIPY_ARRAY_API=1 in "
            "the environment before starting Python, or load with namespace='numpy'.",
            ConfigWarning,
            stacklevel=4,
        )
    os.environ["SCIPY_ARRAY_API"] = "1"


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
