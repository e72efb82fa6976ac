"""Saving to a path: atomically, and as ``open(path, "wb")`` would leave the file.

``dump`` writes to a temporary file in the target's folder, fsyncs it and renames it over
the target, so the target is always either the old file or the complete new one. Around
that, the result must look like what a plain ``open(path, "wb")`` + write gives:

- a **new file** gets mode ``0o666 & ~umask`` (``mkstemp`` alone would leave 0600, and a
  serving user other than the one who saved could not read the model);
- a **replaced file** keeps its mode, and its owner and group where the process may set
  them (root saving over a service account's file);
- a **symbolic link** stays a link: its target is replaced (``open`` follows the link;
  renaming over the link itself would turn it into a regular file);
- **errors name the user's path**, never the temporary file.

Temporary files of saves that were killed (``kill -9``, power loss) are removed by the
next save to the same target (see :func:`_remove_stale`).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from ._exceptions import DevpersistError

#: Where ``flock`` is unavailable, a leftover temporary file is removed only once it
#: is this old (a save still writing it touches it more often than that).
STALE_SECONDS = 24 * 3600
#: A temporary file that is empty and younger than this may have just been created by
#: a save that has not locked it yet: left alone.
_FRESH_SECONDS = 60.0


@contextmanager
def atomic_target(path: str) -> Iterator[IO[bytes]]:
    """A binary file to write; on success it replaces ``path`` (see the module docstring)."""
    target = os.path.realpath(path)  # a symlink's target is what gets replaced
    folder, base = os.path.split(target)
    try:
        previous: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        previous = None
    except OSError as exc:
        raise _named(exc, path) from exc
    _remove_stale(folder, base)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    except OSError as exc:
        raise _named(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            _lock(fd)  # held until closed: tells a concurrent save this file is alive
            _set_mode(fd, previous)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if (
            isinstance(exc, OSError)
            and not isinstance(exc, DevpersistError)
            and exc.filename in (tmp, target, None)
        ):
            raise _named(exc, path) from exc
        raise
    _fsync_dir(folder)


def _named(exc: OSError, path: str) -> OSError:
    """The same kind of error (``PermissionError``...), naming the user's path."""
    if exc.errno is None:
        return OSError(f"cannot save to {path!r}: {exc}")
    return OSError(exc.errno, exc.strerror, path)


def _umask() -> int:
    """The process's umask, read without changing it where the system says it
    (``os.umask`` can only be read by setting it, which races with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - systems without /proc
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def _set_mode(fd: int, previous: os.stat_result | None) -> None:
    if previous is None:
        os.fchmod(fd, 0o666 & ~_umask())
        return
    os.fchmod(fd, stat.S_IMODE(previous.st_mode))
    if hasattr(os, "fchown"):
        try:
            os.fchown(fd, previous.st_uid, previous.st_gid)
        except PermissionError:
            pass  # only root (or the owner, for the group) may: keep ours, as open() does


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the age rule applies
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # pragma: no cover - file systems without locks: the age rule applies
        pass


def _remove_stale(folder: str, base: str) -> None:
    """Remove the temporary files that earlier saves to ``base`` left when they were
    killed: only names ``tempfile.mkstemp`` gives ours (``.{base}.XXXXXXXX.tmp``), only
    regular files, and only those no live save holds: a save holds an exclusive
    ``flock`` on its temporary file until it is renamed or removed, so a file we can
    lock without waiting belongs to a dead save. Without ``flock``, only files older
    than :data:`STALE_SECONDS`. Best effort: a failure here never fails the save."""
    pattern = re.compile(rf"\.{re.escape(base)}\.[a-z0-9_]{{8}}\.tmp\Z")
    try:
        names = [n for n in os.listdir(folder) if pattern.match(n)]
    except OSError:
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    for name in names:
        full = os.path.join(folder, name)
        try:
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            age = time.time() - st.st_mtime
            if not stat.S_ISREG(st.st_mode):
                continue
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live save holds it (or locks are unsupported: keep it)
                if st.st_size == 0 and age < _FRESH_SECONDS:
                    continue  # created an instant ago, maybe not locked yet
            elif age < STALE_SECONDS:
                continue
            if os.stat(full, follow_symlinks=False).st_ino == st.st_ino:
                os.unlink(full)
        except OSError:
            pass
        finally:
            os.close(fd)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
