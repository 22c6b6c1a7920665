"""Start a process detached from ours: its own session, stdin and stdout on /dev/null,
stderr on a given descriptor, only the descriptors named passed on.

What :class:`subprocess.Popen` with ``start_new_session``, ``close_fds`` and
``pass_fds`` does, by ``posix_spawn`` here: importing :mod:`subprocess` (with
:mod:`threading`, :mod:`selectors` and :mod:`signal`) is ~3 ms of CPU in every
``jobgate run --background``, the call that spawns a worker per job, and a plain
``fork`` copies-on-write ~1,000 pages of this interpreter before its ``exec`` (measured:
4,810 against 3,730 page faults per job), where ``posix_spawn`` shares them until the
``exec`` as Popen's ``vfork`` does. A failed ``exec`` is an ``OSError`` here as there.

``posix_spawn`` cannot change directory, so the directory is changed around the call
(and back, by a descriptor of the one we were in); that and the descriptors made
inheritable for the call are process-wide, so Popen is used where other threads run,
and where ``posix_spawn`` or a list of open descriptors is missing (Windows).
"""

from __future__ import annotations

import os
import sys

from jobgate.proc import signums

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class Started(Protocol):
        """A started process: what the spawner uses of it."""

        @property
        def pid(self) -> int: ...

        def kill(self) -> None: ...


class Spawned:
    """A process started by :func:`start`'s ``posix_spawn``: its pid, and a way to kill
    it while it is still our unreaped child (so that pid cannot be anyone else's)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except OSError:
            pass


def start(
    argv: list[str], *, cwd: str, env: dict[str, str], stderr_fd: int, pass_fds: tuple[int, ...]
) -> Started:
    """Start ``argv[0]`` (a path) detached, in ``cwd`` with ``env``; ``stderr_fd`` is its
    stderr and ``pass_fds`` stay open in it under their numbers. Raises ``OSError`` when
    it cannot be started (no such program or directory)."""
    pid = _spawn(argv, cwd=cwd, env=env, stderr_fd=stderr_fd, pass_fds=pass_fds)
    if pid is not None:
        return Spawned(pid)
    import subprocess

    from jobgate.proc import liveness

    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr_fd,
        close_fds=True,
        pass_fds=pass_fds,
        **liveness.backend.detached_options(),  # its own session / process group
    )


def _spawn(
    argv: list[str], *, cwd: str, env: dict[str, str], stderr_fd: int, pass_fds: tuple[int, ...]
) -> int | None:
    """:func:`start` by ``posix_spawn``: the pid, or None where it cannot be done here
    (other threads, no ``posix_spawn`` or ``POSIX_SPAWN_SETSID``, no list of our open
    descriptors, no way back to this directory)."""
    threads = sys.modules.get("threading")
    if (threads is not None and threads.active_count() > 1) or not hasattr(os, "posix_spawn"):
        return None
    strays = _inheritable_fds(pass_fds)
    if strays is None:
        return None
    actions: list[tuple[object, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
        *((os.POSIX_SPAWN_CLOSE, fd) for fd in strays),
    ]
    restored = [n for n in map(signums.number, signums.PYTHON_IGNORES) if n is not None]
    try:
        here = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY)
    except OSError:  # Popen changes the directory in the child only
        return None
    try:
        os.chdir(cwd)
        for fd in pass_fds:
            os.set_inheritable(fd, True)
        try:
            return os.posix_spawn(
                argv[0], argv, env, file_actions=actions, setsid=True, setsigdef=restored
            )
        except NotImplementedError:  # no POSIX_SPAWN_SETSID here (macOS before 10.15)
            return None
        finally:
            for fd in pass_fds:
                os.set_inheritable(fd, False)
            os.fchdir(here)
    finally:
        os.close(here)


def _inheritable_fds(passed: tuple[int, ...]) -> list[int] | None:
    """Our descriptors above 2 that an ``exec`` would hand on, but for ``passed``; None
    if this system will not list them."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found = []
        for name in names:
            fd = int(name) if name.isdigit() else -1
            if fd > 2 and fd not in passed:
                try:
                    if os.get_inheritable(fd):
                        found.append(fd)
                except OSError:  # the listing's own descriptor, closed by now
                    pass
        return found
    return None
