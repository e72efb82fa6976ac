"""A one-line progress bar on stderr for large saves and loads: bytes done of the total,
percentage, rate and time left, all in binary units (KiB, MiB, GiB; MiB/s).

Shown when ``progress=True``, or by default (``progress=None``) when stderr is a terminal
and the work totals at least :data:`AUTO_BYTES`; never in non-interactive use unless
asked. Redrawn at most ten times a second.

What is counted is the work actually done, as it is done:

- saving: array bytes as they are produced for the writer, in pieces of at most
  :data:`PIECE` (so a single 4 GiB array moves the bar, rather than jumping from 0 to
  100% once written);
- loading: bytes read from the file, one read at a time (compressed bytes for a
  compressed array). Arrays that ``mmap=True`` maps are not read at all, so they are
  neither in the total nor counted: the bar never shows a "rate" for a mapping.

Why not tqdm: it would be an optional dependency, so this fallback would be needed
anyway, and the bar is one line with one unit; tqdm's byte mode also mixes decimal
rates with binary sizes unless configured. Forty lines do it without a dependency.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from ._sources import Source

AUTO_BYTES = 64 * 2**20
#: The largest piece of a saved array counted at once.
PIECE = 16 * 2**20


def _fmt(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


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
        self._lock = threading.Lock()  # loads count from the reading thread too

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
        with self._lock:
            self.done += n
            now = time.perf_counter()
            if now - self._last >= 0.1 or self.done >= self.total:
                self._last = now
                self._draw(now)

    def line(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        text = f"devpersist: {self.verb} {_fmt(self.done)} / {_fmt(self.total)}"
        if self.total:
            text += f" ({100 * min(self.done, self.total) / self.total:3.0f}%)"
        rate = self.done / elapsed
        if self.done and elapsed >= 1e-3:  # a rate over a few microseconds means nothing
            text += f" {_fmt(rate)}/s"
            if self.done < self.total:
                text += f", {_clock((self.total - self.done) / rate)} left"
        return text

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now).ljust(72))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def counted(self, chunks: Iterable[memoryview]) -> Iterator[memoryview]:
        """``chunks``, counted as they are consumed; large ones in pieces of
        :data:`PIECE`, so that the bar moves while one large array is written."""
        for chunk in chunks:
            if not self.enabled:
                yield chunk
                continue
            view = memoryview(chunk).cast("B")
            if view.nbytes <= PIECE:
                yield chunk
                self.update(view.nbytes)
                continue
            for start in range(0, view.nbytes, PIECE):
                piece = view[start : start + PIECE]
                yield piece
                self.update(piece.nbytes)


class CountingSource:
    """A container source whose reads into memory move a progress bar (loading)."""

    def __init__(self, source: Source, bar: Progress, count_views: bool) -> None:
        self._source = source
        self._bar = bar
        self._count_views = count_views
        self.size = source.size
        self.overlaps = source.overlaps

    def read(self, offset: int, length: int) -> memoryview:
        view = self._source.read(offset, length)
        if self._count_views:
            self._bar.update(length)
        return view

    def readinto(self, offset: int, out: memoryview) -> None:
        self._source.readinto(offset, out)
        self._bar.update(out.nbytes)
