"""The options of dump and load, as typed, frozen values checked once.

Place in the data flow: the public verbs (:mod:`devpersist._save`,
:mod:`devpersist._load`) build a :class:`DumpOptions` or :class:`LoadOptions` from their
keyword arguments before touching the target, so a bad option fails before any byte is
read or written, and the orchestration passes one typed object instead of a dict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _codecs
from ._devices import Placement
from ._metadata import check_metadata


@dataclass(frozen=True)
class DumpOptions:
    """What :func:`devpersist.dump` and :func:`devpersist.dumps` accept (see there).

    ``codec`` is ``compress`` parsed (``(name, level)`` or None); ``metadata`` is the
    user's metadata once checked.
    """

    compress: Any = None
    precision: str | None = None
    progress: bool | None = False
    clamp_precision: bool = False
    metadata: dict[str, Any] | None = None
    codec: tuple[str, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.metadata is not None:
            object.__setattr__(self, "metadata", check_metadata(self.metadata))
        object.__setattr__(self, "codec", _codecs.parse_compress(self.compress))
        if self.precision is not None and self.precision not in _codecs.PRECISIONS:
            raise ValueError(
                f"precision must be one of {_codecs.PRECISIONS} or None, not {self.precision!r}"
            )


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`devpersist.load` and :func:`devpersist.loads` accept (see there).

    ``verify`` None becomes its default: True, except for memory-mapped loads.
    """

    trusted: Iterable[Any] | None = None
    device: Any = None
    namespace: str | None = None
    fallback: Literal["host", "raise"] = "host"
    restore_config: bool = True
    restore_precision: bool = True
    strict: bool = False
    mmap: bool = False
    verify: bool | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.verify is None:
            object.__setattr__(self, "verify", not self.mmap)
        self.placement()  # raises on a bad device, namespace or fallback

    def placement(self) -> Placement:
        """A fresh placement policy for one load."""
        return Placement(
            device=self.device,
            namespace=self.namespace,
            fallback=self.fallback,
            restore_precision=self.restore_precision,
            mmap=self.mmap,
            verify=bool(self.verify),
        )
