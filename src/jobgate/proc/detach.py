"""Start a process detached from ours: its own session, stdin and stdout on /dev/null,
stderr on a given descriptor, only the descriptors named passed on.

What :class:`subprocess.Popen` with ``start_new_session``, ``close_fds`` and
``pass_fds`` does, by ``fork`` and ``exec`` here: importing :mod:`subprocess` (with
:mod:`threading`, :mod:`selectors` and :mod:`signal`) is ~3 ms of CPU in every
``jobgate run --background``, the call that spawns a worker per job. A failed ``exec``
(or ``chdir``) is reported the way Popen reports it: as ``OSError`` in the parent, read
from a pipe the child writes its ``errno`` to, closed on a successful ``exec``.

Popen is used where the fork is not safe or not there: on Windows, and in a process
that runs other threads (a fork copies one thread; a lock another held stays held).
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


#: signals Python ignores for itself, given back their default before ``exec`` (what
#: Popen's ``restore_signals`` does)
_RESTORED = ("SIGPIPE", "SIGXFZ", "SIGXFSZ")


class Forked:
    """A process started by :func:`start`'s fork: its pid, and a way to kill it while
    it is still our unreaped child (so that pid cannot be anyone else's)."""

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
    it cannot be started (no such program or directory, no fork)."""
    threads = sys.modules.get("threading")
    if sys.platform == "win32" or (threads is not None and threads.active_count() > 1):
        return _popen(argv, cwd=cwd, env=env, stderr_fd=stderr_fd, pass_fds=pass_fds)
    err_r, err_w = os.pipe()  # both ends close on exec (PEP 446)
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except BaseException:
        os.close(err_r)
        os.close(err_w)
        raise
    try:
        pid = os.fork()
    except BaseException:
        for fd in (err_r, err_w, null):
            os.close(fd)
        raise
    if pid == 0:  # pragma: no cover - the child: measured by the tests through its effects
        try:
            _child(argv, cwd, env, null, stderr_fd, pass_fds, err_w)
        finally:
            os._exit(127)
    os.close(err_w)
    os.close(null)
    try:
        report = _read_all(err_r)
    finally:
        os.close(err_r)
    if report:
        os.waitpid(pid, 0)  # it exited without exec: reap it
        code, _, where = report.decode("ascii", "replace").partition(" ")
        number = int(code) if code.isdigit() else 0
        raise OSError(number, os.strerror(number), where or argv[0])
    return Forked(pid)


def _child(
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    null: int,
    stderr_fd: int,
    pass_fds: tuple[int, ...],
    err_w: int,
) -> None:  # pragma: no cover - runs in the forked child
    """Become the detached process: exec, or write ``errno`` and where to ``err_w``."""
    where = cwd
    try:
        os.setsid()
        os.chdir(cwd)
        where = argv[0]
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(stderr_fd, 2)
        keep = sorted({err_w, *pass_fds})
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, fd_limit())
        for fd in pass_fds:
            os.set_inheritable(fd, True)
        signums.restore_default(_RESTORED)
        os.execve(argv[0], argv, env)
    except OSError as exc:
        os.write(err_w, f"{exc.errno or 0} {where}".encode("utf-8", "replace"))


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:  # pragma: no cover - PEP 475 retries it
            continue
        if not chunk:
            return data
        data += chunk


def fd_limit() -> int:
    """One above the highest descriptor number this process may have open."""
    try:
        return max(int(os.sysconf("SC_OPEN_MAX")), 256)
    except (ValueError, OSError):  # pragma: no cover
        return 4096


def _popen(
    argv: list[str], *, cwd: str, env: dict[str, str], stderr_fd: int, pass_fds: tuple[int, ...]
) -> Started:
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
