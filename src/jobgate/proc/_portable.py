"""The portable backend of the platform seam: process facts from psutil (macOS, the BSDs,
Windows), imported lazily on first use.

What psutil cannot give is absent rather than guessed: no boot id (so a host rename reads
as another machine until a real boot id is read, see issue 13), no pidfs inode, no pid
namespace. Chosen once, at import, by :mod:`jobgate.proc.liveness` off Linux.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ENOENT, ESRCH, EINVAL = -2, -3, -22  # never produced here: no pidfds


def boot_id() -> str | None:
    return None


def proc_info(pid: int) -> dict[str, Any] | None:
    """What psutil says about ``pid`` now: ``{"pid", "state", "startTime"}`` (``state``
    psutil's status name, ``Z`` for a zombie), ``{"pid", "state": "unknown"}`` when it
    exists but may not be read, None when no such process exists."""
    if pid <= 0:
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # pragma: no cover - platform specific
        return {"pid": pid, "state": "unknown"}
    state = "Z" if status == psutil.STATUS_ZOMBIE else status
    return {"pid": pid, "state": state, "startTime": created}


def read_proc_stat(pid: int) -> tuple[str, int] | None:
    return None  # no /proc


def pidfs_inode(pid: int) -> int | None:
    return None


def pidfd_lookup(pid: int) -> tuple[int | None, int]:
    return None, -1


def pidfs_ok() -> bool:
    return False


def pid_namespace() -> str | None:
    return None


def proc_is_ours() -> bool:
    return True


def environ_entries(pid: int) -> list[bytes] | None:
    """The entries (``NAME=value``) of ``pid``'s environment, or None when psutil cannot
    read it (no such process; another user's process: ``AccessDenied``)."""
    if pid <= 0:
        return None
    import os

    import psutil

    try:
        env = psutil.Process(pid).environ()
    except (psutil.Error, OSError):
        return None
    return [os.fsencode(f"{name}={value}") for name, value in env.items()]


def marked_pids(mark: bytes) -> list[int]:
    return []  # escaped descendants are found on Linux only for now (issue 13)
