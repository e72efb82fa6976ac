"""Saving to a path leaves what ``open(path, "wb")`` would: modes, owners, symlinks, and
errors that name the user's path (devpersist/_atomic.py)."""

from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

import devpersist

MODEL = {"coef": np.arange(12.0).reshape(3, 4)}


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the umask for one test; the old one comes back afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(saved)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_a_new_file_gets_what_open_would_give(tmp_path, umask, mask):
    umask(mask)
    devpersist.dump(MODEL, tmp_path / "m.dvp")
    with open(tmp_path / "plain", "wb") as f:
        f.write(b"x")
    assert _mode(tmp_path / "m.dvp") == _mode(tmp_path / "plain") == 0o666 & ~mask


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o664, 0o444])
def test_a_replaced_file_keeps_its_mode(tmp_path, umask, mode):
    umask(0o077)  # would give 0600 to a new file: the old mode must win
    target = tmp_path / "m.dvp"
    target.write_bytes(b"old")
    os.chmod(target, mode)
    devpersist.dump(MODEL, target)
    assert _mode(target) == mode
    assert devpersist.load(target)["coef"].tobytes() == MODEL["coef"].tobytes()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_a_replaced_file_keeps_its_owner_where_permitted(tmp_path):
    target = tmp_path / "m.dvp"
    target.write_bytes(b"old")
    os.chown(target, 4321, 4322)
    devpersist.dump(MODEL, target)
    st = os.stat(target)
    assert (st.st_uid, st.st_gid) == (4321, 4322)


def test_saving_onto_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "models" / "v1.dvp"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "current.dvp"
    link.symlink_to(real)
    devpersist.dump(MODEL, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert devpersist.load(real)["coef"].tobytes() == MODEL["coef"].tobytes()
    assert sorted(p.name for p in real.parent.iterdir()) == ["v1.dvp"]  # no temp left


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "current.dvp"
    link.symlink_to(tmp_path / "new.dvp")
    devpersist.dump(MODEL, link)
    assert link.is_symlink()
    assert (tmp_path / "new.dvp").is_file()


def test_errors_name_the_users_path_not_the_temporary_file(tmp_path):
    target = tmp_path / "missing-folder" / "m.dvp"
    with pytest.raises(FileNotFoundError) as info:
        devpersist.dump(MODEL, target)
    assert info.value.filename == str(target)
    assert ".tmp" not in str(info.value)


def test_a_write_failure_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.dvp"
    devpersist.dump({"old": np.ones(3)}, target)
    before = target.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        devpersist.dump(MODEL, target)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.dvp"]


def test_text_mode_file_objects_get_a_clear_error(tmp_path):
    path = tmp_path / "m.dvp"
    with open(path, "w") as f, pytest.raises(TypeError, match="text mode.*'wb'"):
        devpersist.dump(MODEL, f)
    devpersist.dump(MODEL, path)
    with open(path) as f, pytest.raises(TypeError, match="text mode.*'rb'"):
        devpersist.load(f)
