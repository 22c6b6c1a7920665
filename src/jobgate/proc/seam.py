"""The platform seam: what every process backend answers (psutil's layout is the model:
one public face, :mod:`jobgate.proc.liveness`, and one private module per OS family).

- :mod:`jobgate.proc._linux`: ``/proc`` read directly, no psutil (a probe is a few
  microseconds; the Stop hook's path);
- :mod:`jobgate.proc._portable`: psutil, for macOS and the BSDs (and, not yet checked,
  Windows); on Linux with ``JOBGATE_PLATFORM=portable``, which CI runs the whole suite
  with a second time.

:mod:`jobgate.proc.liveness` picks one once, at import. The platform-neutral decisions
stay above the seam: what an identity means (:mod:`jobgate.proc.liveness`,
:mod:`jobgate.proc.starttime`), who is a job's process and how a tree is ended
(:mod:`jobgate.proc.tree`, psutil on every platform), the command held at a gate
(:mod:`jobgate.proc.spawn`, POSIX). Each backend module must match :class:`Backend`
(mypy checks both, in :mod:`jobgate.proc.liveness`). What Windows still needs is in
``docs/platforms.md``.
"""

from __future__ import annotations

from typing import Any, Protocol


class Backend(Protocol):
    """The facts one platform gives about processes (a module, in practice)."""

    #: the identity's ``startSource`` (its granularity: :mod:`jobgate.proc.starttime`)
    SOURCE: str
    #: errno values :func:`pidfd_lookup` reports (never produced where no pidfds exist)
    ENOENT: int
    ESRCH: int
    EINVAL: int

    def boot_id(self) -> str | None:
        """An id of the running boot (another after a reboot), or None."""

    def machine_id(self) -> str | None:
        """An id of this machine, the same across reboots and host renames, or None."""

    def proc_info(self, pid: int) -> dict[str, Any] | None:
        """``{"pid", "state", "startTime", ...}`` of ``pid`` now; ``state`` ``"unknown"``
        (and no start time) when it exists but cannot be read; None when gone."""

    def read_proc_stat(self, pid: int) -> tuple[str, int] | None:
        """``(state, start ticks)`` from ``/proc/<pid>/stat`` (None without /proc)."""

    def pidfs_inode(self, pid: int) -> int | None:
        """The pidfs inode of ``pid`` (Linux >= 6.9), else None."""

    def pidfd_lookup(self, pid: int) -> tuple[int | None, int]:
        """``(inode, 0)`` of a pidfd for ``pid``, else ``(None, errno)``."""

    def pidfs_ok(self) -> bool:
        """Whether pidfs inodes tell processes apart here."""

    def pid_namespace(self) -> str | None:
        """This process's pid namespace, or None where there are none."""

    def proc_is_ours(self) -> bool:
        """Whether the process table read is of our own pid namespace."""

    def environ_entries(self, pid: int) -> list[bytes] | None:
        """``pid``'s environment as ``NAME=value`` entries, None when unreadable."""

    def marked_pids(self, mark: bytes) -> list[int]:
        """Pids (not ours) of this user's processes whose environment holds ``mark``."""

    def detached_options(self) -> dict[str, Any]:
        """:class:`subprocess.Popen` options that detach a process from ours."""
