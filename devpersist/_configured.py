"""The loaded estimator that runs under its recorded configuration (docs/config.md).

The last step of a load that restores a configuration (``_api``): when the planned
configuration (``_config_plan.plan``) differs from scikit-learn's defaults, the model is
handed out inside a :class:`ConfiguredEstimator`. scikit-learn's configuration is
thread-local, so a ``set_config`` in the loading thread would not reach a server's
worker threads: each method call enters ``config_context`` itself, in whichever thread
makes it.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from ._config_plan import Planned, applied


class ConfiguredEstimator:
    """A loaded estimator whose every method runs under its recorded configuration.

    ``isinstance(obj, type(estimator))`` holds, attributes read and write through, and
    the raw estimator is ``obj.__wrapped__`` (or ``devpersist.unwrap(obj)``).
    """

    __slots__ = ("__wrapped__", "_devpersist_config")

    def __init__(self, estimator: Any, planned: Planned) -> None:
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

    def _configured(self, method: types.MethodType) -> Callable[..., Any]:
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
