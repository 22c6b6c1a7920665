"""Agent threads: which earlier task ``task --resume`` continues, and how its session is
continued interactively.

A task's record carries ``agentSessionId`` once its agent reported one (read when the
agent ends: :mod:`jobgate.jobs.agent_thread`). ``task --resume JOB`` continues that
job's session; ``task --resume`` alone the newest finished task of the workspace (of the
session, when one is set) that has one.
"""

from __future__ import annotations

from jobgate.agents import profiles
from jobgate.state import model
from jobgate.state.errors import EXIT_FAILED, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobgate.state.store import Store


def pick(jobs: list[model.Job], ref: str | None, session_id: str | None) -> model.Job:
    """The task to continue (see the module docstring); a :class:`JobgateError` naming
    the job when it cannot be continued. Pure."""
    if ref is not None:
        job = model.resolve_ref(jobs, ref)
        if job.get("kind") != "task":
            raise JobgateError(
                f"job {job['id']} is a {job.get('kind') or 'command'} job, not an agent task: "
                "only a task's agent session can be continued"
            )
        if model.is_active(job):
            raise JobgateError(
                f"job {job['id']} is still {job.get('status')}: its agent reports its session "
                f"when it ends; wait for it first: jobgate wait {job['id']}",
                EXIT_FAILED,
            )
        if not job.get("agentSessionId"):
            raise JobgateError(
                f"job {job['id']} has no agent session to continue: its agent "
                f"({job.get('agent') or 'unknown'}) never reported a session id; "
                "start a new thread with --fresh",
                EXIT_FAILED,
            )
        return job
    pool = [
        j
        for j in model.sort_newest_first(jobs)
        if j.get("kind") == "task" and j.get("agentSessionId") and not model.is_active(j)
    ]
    if session_id:
        pool = [j for j in pool if j.get("sessionId") == session_id]
    if not pool:
        where = f"session {session_id}" if session_id else "this workspace"
        raise JobgateError(
            f"no task of {where} has an agent session to continue; start one: "
            "jobgate task PROMPT (or name a job: jobgate task --resume JOB PROMPT)",
            EXIT_FAILED,
        )
    return pool[0]


def find(store: Store, ref: str | None, session_id: str | None) -> model.Job:
    """:func:`pick` among the workspace's jobs (records refreshed first)."""
    from jobgate.jobs import refresh

    if ref is not None:
        jobs, _lost = refresh.load(store, finished=0)
        job = _logged_session(store, refresh.full_record(store, refresh.resolve(store, jobs, ref)))
        return pick([job], str(job["id"]), session_id)
    jobs, _lost = refresh.load(store)
    return pick(jobs, None, session_id)


def _logged_session(store: Store, job: model.Job) -> model.Job:
    """``job``, with the session id its agent printed when the record has none: a task
    whose worker was killed (the job lost) never recorded it, but its log still holds it.
    Read only; the record is left as it is."""
    from jobgate.jobs import output

    if job.get("agentSessionId") or model.is_active(job) or job.get("kind") != "task":
        return job
    offset = job.get("outputOffset")
    offset = offset if isinstance(offset, int) and not isinstance(offset, bool) else 0
    found = output.agent_found(job, store.log_path(str(job["id"])), max(0, offset))
    if found is None or found.session_id is None:
        return job
    return {**job, "agentSessionId": found.session_id}


def continue_command(job: model.Job) -> list[str] | None:
    """The command that continues ``job``'s agent session interactively (``codex resume
    ID``, ``claude --resume ID``), or None when it has none or its agent is not known."""
    session = job.get("agentSessionId")
    if not isinstance(session, str) or not session:
        return None
    return profiles.interactive_resume(job.get("threadFormat"), session)


def facts(job: model.Job) -> dict[str, Any]:
    """``result``'s facts about the agent's session: ``agentSessionId`` and the command
    that continues it interactively (``continueCommand``, a shell line, and
    ``continueArgv``); empty when the agent reported none."""
    import shlex

    session = job.get("agentSessionId")
    if not isinstance(session, str) or not session:
        return {}
    argv = continue_command(job)
    out: dict[str, Any] = {"agentSessionId": session}
    if argv:
        out.update(continueCommand=shlex.join(argv), continueArgv=argv)
    return out
