"""What a hook handler is given: :class:`HookContext`, the interface of
:class:`jobgate.claude.shell.Context`.

Typing only: handler modules import this under ``TYPE_CHECKING``, never at run time. A
handler cannot import the shell for the class itself (the shell imports the handlers, so
that would be a cycle), and the Stop hook, whose handler is in the shell, loads no module
for it.
"""

from __future__ import annotations

from typing import Any, Protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.state import model
    from jobgate.state.store import Store

#: what a handler returns: the JSON object for stdout (None: print nothing) and the lines
#: for stderr
Output = tuple[dict[str, Any] | None, list[str]]


class HookContext(Protocol):
    """One hook run as its handler sees it."""

    #: the CLI event name (``stop``, ``session-start``, ...)
    event: str
    #: the checked payload (:func:`jobgate.claude.hooks.check_payload`)
    payload: dict[str, Any]
    #: the session the hook acts for; None: every job
    session: str | None
    #: the session's key in the hook state
    key: str
    #: the folder the workspace was found from; "" until :meth:`store` is called
    cwd: str

    def store(self) -> Store:
        """The workspace's store; raises if the state dir is unsafe (a symlink...)."""
        ...

    def session_jobs(self, finished: int = 0) -> list[model.Job]:
        """The session's active jobs, refreshed (dead ones recorded lost, or marked lost
        in the view when the lock is busy), and its jobs among the ``finished`` most
        recently finished ones. Never waits long for the lock."""
        ...

    def setting(self, key: str) -> Any:
        """One setting: the stored value if valid, else the default."""
        ...
