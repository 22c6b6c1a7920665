"""Session-end cleanup: cancel the ending session's active jobs in a detached process.

The ``session-end`` hook (:mod:`jobgate.claude.sessions`) decides which jobs to cancel; this
module does the cancelling. Claude Code may stop waiting for (and kill) a SessionEnd hook
after a short time, so the work runs in a process of its own session
(:func:`cleanup_main`) that the hook waits for only a while (:func:`cancel_detached`).

Only the session-end hook imports this module (lazily): the Stop hook, which runs every
turn, never pays for it.
"""

from __future__ import annotations

import os
import sys

from jobgate.state.errors import JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.state.store import Store

#: TERM -> KILL grace for the jobs session-end cancels, and how long the hook waits for
#: the (detached) cleanup before it returns and lets it finish alone
SESSION_END_GRACE = 3.0
SESSION_END_WAIT = 15.0

SESSION_END_REASON = "session ended"


def cancel_detached(store: Store, ids: list[str]) -> str:
    """Cancel ``ids`` in a detached cleanup process and wait for it a while.

    Claude Code may stop waiting for (and kill) a SessionEnd hook after a short time;
    the cleanup runs in its own session so it still finishes then. Returns the stderr
    line to print.
    """
    import subprocess

    boot = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from jobgate.claude.cleanup import cleanup_main; "
        "raise SystemExit(cleanup_main(sys.argv[2:]))"
    )
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, "-c", boot, parent, store.state_dir, store.workspace_root, *ids],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    try:
        proc.wait(SESSION_END_WAIT)
    except subprocess.TimeoutExpired:
        return (
            f"jobgate: session ended: cancelling {', '.join(ids)} continues in the background "
            f"(cleanup pid {proc.pid})"
        )
    snap = store.snapshot()
    done = [f"{i} ({(snap.lookup(i) or {}).get('status', 'unknown')})" for i in ids]
    return f"jobgate: session ended: {', '.join(done)}"


def cleanup_main(argv: list[str]) -> int:
    """The detached session-end cleanup: ``STATE_DIR ROOT JOB_ID...``.

    Cancels each job (identity-verified, whole tree) with the reason "session ended",
    all at once in threads. A job that is no longer active is skipped; any other
    failure is written to that job's log.
    """
    import threading

    from jobgate.jobs import control
    from jobgate.state.store import Store, log_line

    state_dir, root, *ids = argv
    store = Store(state_dir, root)

    def one(job_id: str) -> None:
        try:
            control.cancel(store, job_id, grace=SESSION_END_GRACE, reason=SESSION_END_REASON)
        except JobgateError:
            pass  # finished meanwhile, or gone
        except Exception as exc:  # recorded, never lost silently
            try:
                log_line(store.log_path(job_id), f"jobgate: session-end cancel failed: {exc!r}")
            except Exception:
                pass

    # jobs still waiting in the queue first, one by one (they have no process: quick), so
    # none of them is started in a slot that cancelling a running job frees
    try:
        active = store.snapshot().active
        queued = {str(j["id"]) for j in active if j.get("phase") == "waiting" and not j.get("pid")}
    except Exception:
        queued = set()
    for job_id in [i for i in ids if i in queued]:
        one(job_id)
    threads = [threading.Thread(target=one, args=(i,)) for i in ids if i not in queued]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0
