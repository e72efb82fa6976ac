"""A save killed half-way leaves the target intact, and the next save removes its
temporary file; nothing else is ever removed."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import devpersist

WRITER = textwrap.dedent(
    """
    import sys, numpy as np, devpersist
    big = np.arange(2**24, dtype=np.float64)  # 128 MiB: long enough to be killed in
    while True:
        devpersist.dump({"x": big}, sys.argv[1])
    """
)


def _strays(folder: Path, name: str) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.name.endswith(".tmp")
    )


def test_killed_saves_leave_no_strays(tmp_path: Path) -> None:
    target = tmp_path / "model.dvp"
    devpersist.dump({"x": np.arange(3)}, target)
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # kill it while a temp file is growing
                strays = _strays(tmp_path, target.name)
                if strays and strays[0].stat().st_size > 2**20:
                    break
                time.sleep(0.01)
            else:
                raise AssertionError("the writer never started writing")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert _strays(tmp_path, target.name), "the kills left nothing to clean"
    loaded = devpersist.load(target)  # the target is a complete file, old or new
    assert set(loaded) == {"x"}
    devpersist.dump({"y": np.arange(2)}, target)
    assert _strays(tmp_path, target.name) == []
    assert np.array_equal(devpersist.load(target)["y"], np.arange(2))


def test_only_dead_saves_files_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "m.dvp"
    keep = {
        ".m.dvp.abcdefgh.tmp.keep": b"x",  # not the pattern
        ".m.dvp.abc.tmp": b"x",  # too short
        ".other.dvp.abcdefgh.tmp": b"x",  # another target's
        "m.dvp.abcdefgh.tmp": b"x",  # no leading dot
        ".m.dvp.ABCDEFGH.tmp": b"x",  # mkstemp never uses capitals
    }
    for name, data in keep.items():
        (tmp_path / name).write_bytes(data)
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"precious")
    (tmp_path / ".m.dvp.linklink.tmp").symlink_to(elsewhere)  # a link: never followed
    (tmp_path / ".m.dvp.dirdirdi.tmp").mkdir()
    live = tmp_path / ".m.dvp.livelive.tmp"  # a running save holds its lock
    live.write_bytes(b"partial")
    dead = tmp_path / ".m.dvp.deaddead.tmp"
    dead.write_bytes(b"partial")
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        devpersist.dump({"x": np.arange(3)}, target)
        assert live.exists()
    assert not dead.exists()
    for name in keep:
        assert (tmp_path / name).exists(), name
    assert (tmp_path / ".m.dvp.linklink.tmp").is_symlink()
    assert elsewhere.read_bytes() == b"precious"
    assert (tmp_path / ".m.dvp.dirdirdi.tmp").is_dir()
