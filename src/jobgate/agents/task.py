"""An agent task: a job that runs one agent CLI (from its profile) on a prompt.

The agent's program is looked up before anything is recorded, so a missing program is
one clear error and leaves no job behind. Where the profile has the agent write its final
message to a file, jobgate creates that file itself (0600) in the job folder, and the
worker turns it into the job's result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from jobgate.agents import profiles as agents
from jobgate.state import config as config_mod
from jobgate.state.errors import JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobgate.state.store import Store

#: exit code when the agent's program is missing (the shell's "command not found")
EXIT_NOT_FOUND = 127


@dataclass(frozen=True)
class Prepared:
    """A task ready to launch: the agent's argv and the job fields that go with it."""

    agent: str
    argv: list[str]
    result_file: str | None
    fields: dict[str, Any]


def prepare(
    store: Store,
    agent: str,
    prompt: str,
    *,
    cwd: str,
    name: str | None,
    session_id: str | None,
    resume: dict[str, Any] | None = None,
    options: dict[str, str | None] | None = None,
) -> Prepared:
    """Resolve ``agent``'s profile and build its run; raises :class:`JobgateError` (exit
    127) when its program cannot be found from ``cwd``. Creates the state dir and, where
    the profile needs one, the empty final-message file.

    ``resume``: the earlier task whose agent session this run continues
    (:func:`jobgate.agents.threads.find`); ``options``: ``model``/``effort`` for the
    profile's placeholders. Bad options are refused before anything is created."""
    stored = store.read_config() if os.path.isdir(store.state_dir) else {}
    profiles = config_mod.effective(stored)["agents"]
    session = str(resume["agentSessionId"]) if resume is not None else None
    template = agents.profile(profiles, agent)
    if session is not None:
        template = agents.resume_template(profiles, agent)
    agents.check_options(agent, template, options or {})
    if _locate(template[0], cwd) is None:
        raise JobgateError(
            agents.missing_program_message(agent, template[0], template), EXIT_NOT_FOUND
        )
    store.ensure()
    result_file = _result_file(store) if agents.uses_last_message_file(template) else None
    command = agents.build(
        profiles, agent, prompt, result_file, session_id=session, options=options
    )
    extra: dict[str, Any] = {"agent": command.agent}
    if command.result_file is not None:
        # read by the worker when the agent ends (jobgate.jobs.output: the job's result)
        extra["resultFile"] = command.result_file
    fmt = agents.thread_format(template)
    if fmt is not None:
        # how the worker finds the agent's session id (jobgate.jobs.agent_thread)
        extra["threadFormat"] = fmt
    if resume is not None:
        extra.update(resumedFrom=resume["id"], resumedSessionId=session)
    extra.update({k: v for k, v in (options or {}).items() if v is not None})
    fields: dict[str, Any] = dict(
        cwd=cwd,
        kind="task",
        name=name or agents.default_name(command.agent, prompt),
        session_id=session_id,
        extra=extra,
    )
    return Prepared(command.agent, list(command.argv), command.result_file, fields)


def start_background(store: Store, task: Prepared) -> dict[str, Any]:
    """Launch ``task`` with a detached worker; its record as created."""
    from jobgate.jobs import launch

    try:
        return launch.start_background(store, task.argv, **task.fields)
    except BaseException:
        _remove_quietly(task.result_file)
        raise


def enqueue(store: Store, task: Prepared, queue_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Queue ``task`` (:func:`jobgate.jobs.launch.enqueue`); its record."""
    from jobgate.jobs import launch

    try:
        return launch.enqueue(store, task.argv, **task.fields, **queue_kwargs)
    except BaseException:
        _remove_quietly(task.result_file)
        raise


def run_foreground(
    store: Store, task: Prepared, *, stdout_to_stderr: bool
) -> tuple[dict[str, Any], int]:
    """Run ``task`` here until it ends: ``(final record, exit code)``."""
    from jobgate.jobs import launch

    try:
        return launch.run_foreground(
            store, task.argv, stdout_to_stderr=stdout_to_stderr, **task.fields
        )
    finally:
        _remove_quietly(task.result_file)  # normally read and removed by the worker


def _locate(program: str, cwd: str) -> str | None:
    """Where ``program`` would be found when started in ``cwd`` (None: nowhere).

    A name without a slash is looked up on PATH; a path is taken relative to ``cwd``,
    as the worker starts the command there.
    """
    import shutil

    if os.sep in program or (os.altsep and os.altsep in program):
        return shutil.which(os.path.join(cwd, program))
    return shutil.which(program)


def _result_file(store: Store) -> str:
    """A fresh, empty file in the job folder for the agent's final message.

    Created here (0600, like every state file: a final message can be as secret as the
    prompt) rather than left to the agent, which would create it with its own umask.
    """
    import secrets

    while True:
        path = os.path.join(store.jobs_dir, f"{secrets.token_hex(8)}.last-message")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
        return path


def _remove_quietly(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
