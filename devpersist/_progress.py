"""A one-line progress bar on stderr (bytes, percentage, rate) for large saves and loads.

Shown when ``progress=True``, or by default (``progress=None``) when stderr is a terminal
and the arrays total at least :data:`AUTO_BYTES`; never in non-interactive use unless
asked. Redrawn at most ten times a second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO

AUTO_BYTES = 64 * 2**20


def _fmt(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


class Progress:
    def __init__(
        self, total: int, verb: str, enabled: bool | None, stream: IO[str] | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._requested = enabled
        self._enabled: bool | None = None
        self.total = total
        self.verb = verb
        self.done = 0
        self._start = time.perf_counter()
        self._last = 0.0

    @property
    def enabled(self) -> bool:
        """Decided at the first update, once ``total`` is known."""
        if self._enabled is None:
            if self._requested is None:
                isatty = getattr(self.stream, "isatty", lambda: False)
                self._enabled = bool(isatty()) and self.total >= AUTO_BYTES
            else:
                self._enabled = bool(self._requested)
        return self._enabled

    def update(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += n
        now = time.perf_counter()
        if now - self._last >= 0.1 or self.done >= self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        share = f" ({100 * self.done / self.total:3.0f}%)" if self.total else ""
        self.stream.write(
            f"\rdevpersist: {self.verb} {_fmt(self.done)} / {_fmt(self.total)}{share} "
            f"{self.done / elapsed / 1e6:8.1f} MB/s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def counted(self, chunks: Iterable[memoryview]) -> Iterator[memoryview]:
        for chunk in chunks:
            yield chunk
            self.update(chunk.nbytes if isinstance(chunk, memoryview) else len(chunk))
