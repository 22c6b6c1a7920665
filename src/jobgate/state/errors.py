"""The one error type the CLI turns into a clear single line on stderr."""

from __future__ import annotations

#: exit codes
EXIT_OK = 0
#: the job failed / is not in the state the command needs / the system refused (disk
#: full, read-only file system, permission denied, lock busy)
EXIT_FAILED = 1
EXIT_USAGE = 2  # bad input: unknown job, bad value, bad arguments
EXIT_TIMEOUT = 124


class JobgateError(Exception):
    """A user-facing error: ``message`` is printed as one line, ``exit_code`` returned."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class LockTimeout(JobgateError):
    """Another process held the lock too long: the system refused, not bad input (exit 1)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g}s waiting for the lock {path}", EXIT_FAILED)
