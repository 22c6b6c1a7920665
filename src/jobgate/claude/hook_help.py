"""``jobgate hook``'s help: the text, the ``jobgate hook --help`` parser, and the ``hook``
entry on the main CLI's parser.

Imported only to print help or to build the main parser; a hook that runs never loads it
(nor argparse).
"""

from __future__ import annotations

import argparse

from jobgate.claude import hooks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DESCRIPTION = """\
Run one Claude Code hook. The hook's JSON payload is read from stdin; the workspace is
the payload's "cwd" and the session its "session_id" (else $JOBGATE_SESSION_ID, else
every job). Claude Code sends "cwd" and "hook_event_name" with every hook; a payload
without them is refused unless you name the workspace with --cwd DIR (to run a hook by
hand).

  stop                Name each job of the session that is really running (dead ones
                      are recorded lost, never named) and each of Claude Code's own
                      background tasks (payload "background_tasks"): as
                      "systemMessage" on stdout, which Claude Code shows, and on
                      stderr. With waitForJobs, block while they run (at most
                      maxStopBlocks times in a row); with stopReviewGate, run
                      reviewCommand and block on BLOCK.
  stop-failure        The turn ended on an API error: name the running jobs, never
                      block, never review.
  session-start       Write `export JOBGATE_SESSION_ID=<id>` into $CLAUDE_ENV_FILE (at
                      startup, resume, clear and compact; one line, the current id).
  session-end         Cancel the session's active jobs (whole process trees, identity
                      checked) and record them cancelled: "session ended" — when the
                      session really ends (sessionEndCancels: exit-only, the default,
                      skips reason "clear" and "resume"; always; never). A subagent's
                      SessionEnd (payload "agent_id") cancels nothing.
  user-prompt-submit  Tell Claude, once per job, which of the session's jobs finished.

Every error fails open: exit status 0, nothing on stdout, one line on stderr.
"""

EXAMPLES = """\
examples:
  echo '{"session_id": "s1"}' | jobgate hook --cwd /repo stop
  echo '{"session_id": "s1"}' | CLAUDE_ENV_FILE=/tmp/env jobgate hook --cwd /repo session-start
  jobgate config set waitForJobs true
  jobgate config set stopReviewGate true
  jobgate config set sessionEndCancels always
"""


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    handler: Callable[[argparse.Namespace], int],
) -> None:
    """Register ``hook`` on the main CLI, run by ``handler``."""
    p = subparsers.add_parser(
        "hook",
        help="run a Claude Code hook (JSON payload on stdin; always exits 0)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("event", choices=list(hooks.EVENTS), help="the hook to run")
    p.set_defaults(handler=handler)


def help_parser() -> argparse.ArgumentParser:
    """The parser behind ``jobgate hook --help``."""
    p = argparse.ArgumentParser(
        prog="jobgate hook",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("event", choices=list(hooks.EVENTS), help="the hook to run")
    return p
