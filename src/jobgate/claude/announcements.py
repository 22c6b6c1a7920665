"""user-prompt-submit: a new prompt ends the Stop hook's rows of blocks, and Claude is
told, once per job, which of the session's background jobs finished.

"Once" is the job record's ``announcedAt``, set under the store lock on a fresh read
(:func:`claim`), so concurrent hooks — and ``jobgate watch --session``, the push path,
which claims each job the same way before it prints the job's end — announce a job only
once. What is announced, and how, is :mod:`jobgate.claude.hooks`'
(:func:`~jobgate.claude.hooks.unannounced`, :func:`~jobgate.claude.hooks.announcement`).
"""

from __future__ import annotations

from jobgate.claude import hook_state, hooks
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.claude.context import HookContext, Output
    from jobgate.state.store import Store


#: the most recently finished jobs (of all sessions) looked through for unannounced ones:
#: more than that finishing between two prompts is beyond what one notice can list
ANNOUNCE_WINDOW = 100


def user_prompt_submit(ctx: HookContext) -> Output:
    store = ctx.store()
    jobs = ctx.session_jobs(finished=ANNOUNCE_WINDOW)
    hook_state.update_entry(store, ctx.key, lambda entry: (None, hooks.clear_rows(entry)))
    fresh = hooks.unannounced(jobs)
    if not fresh:
        return None, []
    announced = claim(store, [str(j["id"]) for j in fresh], hook_state.STATE_LOCK_TIMEOUT)
    if not announced:
        return None, []
    return hooks.prompt_output(hooks.announcement(announced)), []


def claim(store: Store, job_ids: list[str], lock_timeout: float) -> list[model.Job]:
    """Mark each of these jobs announced (``announcedAt``) under the store lock, on a
    fresh read, and return the summaries of those this call marked, in the order given:
    not a job announced already (by a concurrent hook, or ``jobgate watch``), nor one
    that is not finished, nor a foreground one. Whoever claims a job tells the session;
    the others skip it. ``jobgate watch --session`` claims each end before it prints it.
    Raises :class:`~jobgate.state.errors.LockTimeout` when the lock stays busy."""
    import time

    announced: list[model.Job] = []
    with store.transaction(lock_timeout) as tx:
        now = time.time()
        for job_id in job_ids:
            full = tx.get(job_id)
            if full is None or not model.is_finished(full) or full.get("announcedAt"):
                continue  # announced by a concurrent hook, or not finished after all
            if full.get("foreground"):
                continue
            marked = model.touch(full, now, announcedAt=model.now_iso(now))
            tx.put(marked)
            announced.append(model.summary(marked))
    return announced
