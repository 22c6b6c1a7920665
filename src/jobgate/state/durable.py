"""Replacing a state file now and making it durable later: what lets a lock holder
never wait for the disk (see :mod:`jobgate.state.transaction`, step 5)."""

from __future__ import annotations

import os

from jobgate.state import replacing
from jobgate.state.fileio import READ_FLAGS, _unlink_quietly, fsync_dir, write_temp


def replace_with(
    path: str, data: bytes, *, sync: bool, mode: int = 0o600, hold_old: list[int] | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, ``os.replace``), the data
    fsynced first only with ``sync``; the folder is never fsynced here: the caller
    decides when the rename must be durable (:mod:`jobgate.state.transaction` does it
    after letting the lock go, and only where it must). An :class:`OSError` names
    ``path``, as :func:`atomic_write`'s do.

    ``hold_old``: a list to which a descriptor of the file being replaced is added, for
    the caller to close later. The replaced file is then freed at that close, not in the
    rename: freeing a file waits for any write of it still under way (another writer's
    fsync of it, say), and a lock holder must not wait for the disk."""
    if hold_old is not None:
        try:
            hold_old.append(os.open(path, READ_FLAGS))
        except OSError:
            pass  # none yet (or not a file we would read): nothing to hold
    try:
        tmp = write_temp(path, data, mode, sync=sync)
        try:
            replacing.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
    except OSError as exc:
        if exc.filename == path or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, path) from exc


def fsync_paths(paths: list[str]) -> None:
    """fsync the files named, then the folders (each once, in order); a file gone by
    now (replaced or removed since) is skipped. Errors are ignored, as
    :func:`fsync_dir`'s: the change is made and visible, this makes it durable."""
    names = list(dict.fromkeys(paths))
    folders = [p for p in names if os.path.isdir(p)]
    for path in names:
        if path in folders:
            continue
        try:
            fd = os.open(path, READ_FLAGS)  # never through a symlink, never a FIFO's wait
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
    for folder in folders:
        fsync_dir(folder)
