"""Start a job's command *held at a gate*: the process exists, so its pid and start time
can be put on record, but it does not run the command until it is released.

Why: the worker records the command's identity in the state dir and only then lets it
run. A worker killed in between (SIGKILL, OOM) must not leave a command running that no
record names — nobody could see it, wait for it or cancel it. A held process whose
worker dies finds its gate closed and exits without running anything.

How: the held process blocks reading one byte from a pipe whose only writer is the
worker. It is either a fork of the worker (:func:`fork_held`, the background worker's
way: no interpreter to start) or, where the command's output must come back through
pipes (a foreground run), a tiny Python program (:func:`start_held`: ``python -I -S``,
no site, no user environment variables read). ``b"g"`` releases it: it ``exec``s the
command in place, so the pid and start time recorded for it stay the command's own. End
of file (the worker is gone, or :meth:`HeldCommand.abandon`) makes it exit with status
125. If ``exec`` fails, the held process reports the ``errno`` on a second pipe, closed
on a successful ``exec``, and exits with 127: the worker reads that pipe to end of file
to learn which happened.

The command's argv goes through the held process's own argv, so arbitrary bytes
(decoded by Python with ``surrogateescape``) reach ``exec`` unchanged.

POSIX only (``pass_fds``, ``exec`` in place).
"""

from __future__ import annotations

import errno as errno_mod
import os
import sys

from jobgate.proc import liveness, signums

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

#: the held process: argv is ``GATE_FD REPORT_FD KEEP_LC_CTYPE PROGRAM [ARG...]``.
#: Before ``exec`` it undoes what starting Python did to the process: Python ignores
#: SIGPIPE and SIGXFSZ (an ignored signal stays ignored across ``exec``: ``yes | head``
#: would never end), and with the C locale it adds ``LC_CTYPE`` to the environment. It
#: also gives back SIGHUP, which the background worker ignores for itself (a command
#: started with it ignored could not trap it, nor pass it on to its children).
_HELD = """\
import os, sys
try:
    import _signal as signal  # the same functions without signal's enums (~3 ms)
except ImportError:
    import signal
signal.signal(signal.SIGINT, signal.SIG_DFL)
gate, report = int(sys.argv[1]), int(sys.argv[2])
if os.read(gate, 1) != b"g":
    os._exit(125)
os.close(gate)
os.set_inheritable(report, False)
for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ", "SIGHUP"):
    if hasattr(signal, name):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
if sys.argv[3] == "0":
    os.environ.pop("LC_CTYPE", None)
try:
    os.execvp(sys.argv[4], sys.argv[4:])
except OSError as exc:
    os.write(report, str(exc.errno).encode())
os._exit(127)
"""

#: the exit status of a held process that was never released
NOT_RELEASED = 125


class _Gate:
    """The worker's side of a held process's two pipes: the gate it writes, the report
    it reads (see the module docstring)."""

    pid: int

    def __init__(self, gate_w: int, report_r: int) -> None:
        self._gate_w: int | None = gate_w
        self._report_r = report_r

    def release(self, program: str, path: str | None = None) -> str | None:
        """Let it run the command. None once ``exec`` succeeded, else why it could not
        (the held process then exits with 127)."""
        gate, self._gate_w = self._gate_w, None
        assert gate is not None, "released twice"
        try:
            os.write(gate, b"g")
        except OSError:
            pass  # it is gone already: the report pipe says nothing, wait() tells
        finally:
            os.close(gate)
        report = b""
        try:
            while True:
                chunk = os.read(self._report_r, 64)
                if not chunk:
                    break
                report += chunk
        finally:
            os.close(self._report_r)
        if not report:
            return None
        return _exec_error(program, report, path)

    def abandon(self) -> None:
        """Close the gate without releasing it: the held process exits (125), reaped here."""
        if self._gate_w is not None:
            os.close(self._gate_w)
            self._gate_w = None
            os.close(self._report_r)
        self._reap()

    def _reap(self) -> None:
        raise NotImplementedError


class HeldCommand(_Gate):
    """A command's process waiting at its gate, started by :func:`start_held`."""

    def __init__(self, proc: subprocess.Popen[bytes], gate_w: int, report_r: int) -> None:
        super().__init__(gate_w, report_r)
        self.proc = proc
        self.pid = proc.pid

    def _reap(self) -> None:
        self.proc.wait()


class ForkedCommand(_Gate):
    """A command's process waiting at its gate, forked by :func:`fork_held`; :meth:`wait`
    reaps it like ``Popen.wait`` (``-N`` when killed by signal N)."""

    def __init__(self, pid: int, gate_w: int, report_r: int) -> None:
        super().__init__(gate_w, report_r)
        self.pid = pid
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            _pid, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def _reap(self) -> None:
        self.wait()


def start_held(
    argv: list[str], *, cwd: str | None, env: dict[str, str], **popen: Any
) -> HeldCommand:
    """Start ``argv`` held at its gate, in a new session, with ``env``; ``popen`` carries
    the stdio arguments of :class:`subprocess.Popen`. Raises ``OSError`` if even the
    held process cannot start (e.g. ``cwd`` is gone)."""
    import subprocess  # only here: the background worker forks (fork_held) instead

    gate_r, gate_w = os.pipe()
    report_r, report_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [
                *[sys.executable, "-I", "-S", "-c", _HELD, str(gate_r), str(report_w)],
                "1" if "LC_CTYPE" in env else "0",
                *argv,
            ],
            cwd=cwd,
            env=env,
            pass_fds=(gate_r, report_w),
            **liveness.backend.detached_options(),  # a session of its own
            **popen,
        )
    except BaseException:
        for fd in (gate_r, gate_w, report_r, report_w):
            os.close(fd)
        raise
    os.close(gate_r)
    os.close(report_w)
    return HeldCommand(proc, gate_w, report_r)


#: signals Python ignores for itself (or the background worker does) that a command must
#: get back at their default: an ignored signal stays ignored across ``exec``
_GIVEN_BACK = (*signums.PYTHON_IGNORES, "SIGHUP", "SIGINT")


def fork_held(argv: list[str], *, env: dict[str, str], out_fd: int) -> ForkedCommand:
    """Fork ``argv`` held at its gate, in a new session, stdin on /dev/null, stdout and
    stderr on ``out_fd``, with ``env``, in this process's directory. The same contract as
    :func:`start_held` without a second interpreter: the held process is a fork of this
    one that does nothing but wait at the gate, so a background job costs one
    interpreter start fewer. Only for a process with no other threads (the background
    worker, before its watchdog). Raises ``OSError`` if it cannot fork."""
    gate_r, gate_w = os.pipe()  # both ends close on exec (PEP 446)
    report_r, report_w = os.pipe()
    try:
        null = os.open(os.devnull, os.O_RDONLY)
    except BaseException:
        for fd in (gate_r, gate_w, report_r, report_w):
            os.close(fd)
        raise
    try:
        pid = os.fork()
    except BaseException:
        for fd in (gate_r, gate_w, report_r, report_w, null):
            os.close(fd)
        raise
    if pid == 0:  # pragma: no cover - the child: measured by the tests through its effects
        code = 127
        try:
            code = _held_child(argv, env, gate_r, report_w, null, out_fd)
        finally:
            os._exit(code)
    for fd in (gate_r, report_w, null):
        os.close(fd)
    return ForkedCommand(pid, gate_w, report_r)


def _fd_limit() -> int:
    try:
        return max(int(os.sysconf("SC_OPEN_MAX")), 256)
    except (ValueError, OSError):  # pragma: no cover
        return 4096


def _held_child(
    argv: list[str], env: dict[str, str], gate: int, report: int, null: int, out_fd: int
) -> int:  # pragma: no cover - runs in the forked child
    """The held process: its own session and stdio, every other descriptor closed, wait
    at the gate, then ``exec`` (never returns on success)."""
    signums.restore_default(("SIGINT",))
    os.setsid()
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    low = 3
    for fd in sorted((gate, report)):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _fd_limit())  # the worker's pipes to its launcher among them
    if os.read(gate, 1) != b"g":
        return NOT_RELEASED
    signums.restore_default(_GIVEN_BACK)
    try:
        _exec_searching(argv, env)
    except OSError as exc:
        os.write(report, str(exc.errno).encode())
    return 127


def _exec_searching(argv: list[str], env: dict[str, str]) -> None:
    """``os.execvpe(argv[0], argv, env)``, the same search of ``env``'s ``PATH`` and the
    same error, without what it imports on the way (``os.get_exec_path`` imports
    :mod:`warnings`: ~1.5 ms of every held command before its ``exec``)."""
    program = argv[0]
    if os.sep in program:
        os.execve(program, argv, env)
    path = env.get("PATH")
    first: OSError | None = None  # the first error other than "not there": EACCES, ...
    last: OSError = FileNotFoundError(errno_mod.ENOENT, os.strerror(errno_mod.ENOENT))
    for folder in (os.defpath if path is None else path).split(os.pathsep):
        try:
            os.execve(os.path.join(folder, program), argv, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
        except OSError as exc:
            last = exc
            first = first or exc
    raise first or last


def _exec_error(program: str, report: bytes, path: str | None = None) -> str:
    """Why ``exec`` failed, from the ``errno`` the held process reported; ``path`` is the
    ``PATH`` it searched."""
    try:
        code = int(report.decode("ascii", "replace").strip())
    except ValueError:
        return f"cannot run {program}"
    if code == errno_mod.ENOENT:
        import shutil

        if shutil.which(program, path=path) is not None:
            # the file is there and executable: what is missing is its #! interpreter
            return f"cannot run {program}: the interpreter on its #! line was not found"
        return f"command not found: {program}"
    if code in (errno_mod.EACCES, errno_mod.EPERM):
        return f"permission denied running {program}"
    return f"cannot run {program}: {os.strerror(code)}"
