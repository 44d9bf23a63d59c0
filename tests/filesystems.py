"""Real filesystems that refuse writes: a read-only folder and a full disk, for root too.

Root ignores permission bits, so as root these are small tmpfs mounts (read-only, or filled up);
without root a read-only folder is chmod 555, and a full disk is a seam (see full_folder).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(options: str, path: Path) -> bool:
    """Mount a small tmpfs on `path`; False when this process may not mount."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """An empty folder at `path` in which nothing can be created, by anyone."""
    path.mkdir(parents=True, exist_ok=True)
    if _mount("ro,size=64k", path):
        try:
            yield path
        finally:
            _unmount(path)
        return
    if os.geteuid() == 0:
        pytest.skip("root without permission to mount: no folder is read-only to root")
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)


@contextlib.contextmanager
def full_folder(path: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> Iterator[Path]:
    """A folder at `path` on a disk with no free space left (a filled 256 KiB tmpfs).

    Where this process may not mount, a seam instead when `monkeypatch` is given: os.fsync
    (which every report page write calls) raises ENOSPC, in this process only; else a skip.
    """
    path.mkdir(parents=True, exist_ok=True)
    if not _mount("size=256k", path):
        if monkeypatch is None:
            pytest.skip("cannot mount a tmpfs here: no full disk to test with")
        monkeypatch.setattr(os, "fsync", _disk_full)
        yield path
        return
    try:
        with (path / "filler").open("wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 4096)
        assert not is_writable(path)
        yield path
    finally:
        _unmount(path)


def _disk_full(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def is_writable(path: Path) -> bool:
    """Whether a file can really be written in `path`."""
    return why_not_writable(path) is None


def why_not_writable(path: Path) -> str | None:
    """The reason (strerror) a file cannot be written in `path`; None if it can."""
    probe = path / ".probe"
    try:
        probe.write_bytes(b"x" * 8192)
    except OSError as exc:
        return exc.strerror
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


@contextlib.contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    """`folder`'s files, seen at `view` where nothing can be written (a read-only bind mount;
    without root, `folder` itself made read-only)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield folder
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    view.mkdir(parents=True, exist_ok=True)
    bound = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip("root without permission to mount: no file is read-only to root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        yield view
    finally:
        _unmount(view)
