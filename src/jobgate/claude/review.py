"""The Stop review gate's runner: run ``reviewCommand`` on a prompt and read its verdict.

The command line is split the way a POSIX shell would split it (:func:`shlex.split`)
and run *without* a shell, in its own session so a timeout ends the whole reviewer
tree. The prompt goes to its stdin; its first non-blank stdout line is the verdict
(see :func:`jobgate.claude.review_rules.parse_verdict`).

The reviewer gets ``JOBGATE_IN_REVIEW=1`` in its environment. A reviewer that is
itself a Claude Code session with this plugin (``claude -p``) runs the Stop hook too;
the hook skips the gate when it sees that variable, so a review never reviews itself.

Caveats: shell syntax (pipes, ``&&``, ``$VAR``) is not interpreted; wrap it in
``sh -c '...'`` if you need it. At most the first MiB of a reviewer's
output is read.
"""

from __future__ import annotations

import os
import signal
import subprocess

from jobgate.claude.hooks import IN_REVIEW_ENV
from jobgate.claude.review_rules import parse_verdict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


def run(command_line: str, prompt: str, *, timeout: float, cwd: str) -> dict[str, str]:
    """Run the reviewer; ``{"verdict": "allow"|"block"|"error", "text": ...}``.

    Errors (bad command line, program missing, non-zero exit, timeout, empty or
    unexpected output) come back as ``verdict == "error"`` with a sentence saying
    what happened; this function does not raise for them.
    """
    import shlex

    try:
        argv = shlex.split(command_line)
    except ValueError as exc:
        return {"verdict": "error", "text": f"reviewCommand cannot be parsed ({exc})"}
    if not argv:
        return {"verdict": "error", "text": "reviewCommand is empty"}
    env = dict(os.environ)
    env[IN_REVIEW_ENV] = "1"
    # stdin, stdout and stderr are unlinked temp files, not pipes: the verdict is read
    # once the reviewer *exits* (or is killed at the timeout). With pipes, a process it
    # left behind that still holds stdout (``cmd &``, a daemon in a new session) would
    # keep the hook waiting for end-of-file past reviewTimeout, or turn an answer the
    # reviewer already gave into a timeout.
    import tempfile

    with (
        tempfile.TemporaryFile() as fin,
        tempfile.TemporaryFile() as fout,
        tempfile.TemporaryFile() as ferr,
    ):
        fin.write(prompt.encode("utf-8", "replace"))
        fin.flush()
        fin.seek(0)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=fin,
                stdout=fout,
                stderr=ferr,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError:
            return {
                "verdict": "error",
                "text": f"the reviewer program {argv[0]!r} was not found (installed? on PATH?)",
            }
        except OSError as exc:
            return {
                "verdict": "error",
                "text": f"the reviewer {argv[0]!r} cannot start: {exc.strerror}",
            }
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
            return {
                "verdict": "error",
                "text": f"the reviewer gave no answer within reviewTimeout ({timeout:g}s); "
                "killed it",
            }
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        out = _read_back(fout)
        err = _read_back(ferr, tail=True)
    stdout = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        what = (
            f"was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited with code {proc.returncode}"
        )
        tail = _last_line(err.decode("utf-8", "replace"))
        return {"verdict": "error", "text": f"the reviewer {what}" + (f": {tail}" if tail else "")}
    return parse_verdict(stdout)


def _read_back(fh: IO[bytes], limit: int = 1 << 20, *, tail: bool = False) -> bytes:
    """What the reviewer wrote to ``fh``: its first ``limit`` bytes, or with ``tail``
    its last ``limit`` bytes."""
    if tail:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - limit))
    else:
        fh.seek(0)
    return fh.read(limit)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the reviewer's process group (it leads its own session), else the reviewer."""
    killpg = getattr(os, "killpg", None)
    if killpg is not None:
        try:
            killpg(proc.pid, signal.SIGKILL)
            return
        except OSError:
            pass
    try:
        proc.kill()
    except OSError:
        pass


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= 200 else last[:197] + "..."
