"""jobgate's built-in agent profiles against the real, pinned CLIs (tests/e2e/package.json):
every flag and subcommand a profile uses is one the installed binary accepts (its
``--help``), and a real ``claude -p`` / ``codex exec`` task run through jobgate against a
scripted local model server records its result and thread id and can be resumed."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.claude_env import QUIET, ClaudeEnv, find_client
from e2e.codex_env import CodexEnv, find_codex
from e2e.scripted_api import Text, messages_with
from e2e.scripted_responses import texts_of
from jobgate.agents import profiles
from jobgate.state import config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _templates(agent: str) -> list[list[str]]:
    """Every argv template jobgate runs ``agent`` with: its profile, its resume, its
    read-only review."""
    review = profiles.REVIEW_TEMPLATES.get(agent)
    return [config.BUILTIN_AGENTS[agent], profiles.RESUME[agent], *([review] if review else [])]


def _command_and_flags(template: list[str]) -> tuple[list[str], list[str]]:
    """``(subcommand words, flags)`` of a template: the words after the program up to the
    first flag, and every option it passes (``--config=k=v`` is ``--config``)."""
    words: list[str] = []
    for element in template[1:]:
        if element.startswith("-") or "{" in element:
            break
        words.append(element)
    flags = [e.split("=", 1)[0] for e in template[1:] if e.startswith("-") and e != "--"]
    return words, flags


def _help(binary: Path, words: list[str]) -> str:
    proc = subprocess.run(
        [str(binary), *words, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": str(binary.parent) + ":/usr/bin:/bin", "HOME": "/nonexistent", **QUIET},
    )
    assert proc.returncode == 0, (words, proc.stderr)
    return proc.stdout + proc.stderr


def _accepts(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


@pytest.mark.parametrize("agent", sorted(config.BUILTIN_AGENTS))
def test_every_flag_and_subcommand_of_the_builtin_profiles_is_in_the_clis_help(
    agent: str,
) -> None:
    binary, problem = find_codex() if agent == "codex" else find_client()
    if binary is None:
        pytest.skip(problem)
    for template in _templates(agent):
        words, flags = _command_and_flags(template)
        for n in range(len(words)):  # each subcommand is listed by its parent's help
            parent = _help(binary, words[:n])
            assert re.search(rf"^\s+{words[n]}\b", parent, re.M), (words[: n + 1], parent)
        text = _help(binary, words)
        missing = [f for f in flags if not _accepts(text, f)]
        assert not missing, f"{agent} {' '.join(words)} --help lacks {missing}"
    if agent == "claude":  # the output format the session id is read from
        assert re.search(r"--output-format.*\"json\"", _help(binary, []), re.S)


def test_the_help_check_catches_a_flag_the_cli_does_not_have() -> None:
    binary, problem = find_codex()
    if binary is None:
        pytest.skip(problem)
    resume_help = _help(binary, ["exec", "resume"])
    assert not _accepts(resume_help, "--sandbox")  # exec has it, exec resume does not
    assert _accepts(_help(binary, ["exec"]), "--sandbox")


# -- claude -p through jobgate --------------------------------------------------------------
@pytest.fixture
def bare_cc(tmp_path: Path) -> Iterator[ClaudeEnv]:
    """A Claude Code world without jobgate's plugin: the client is only the agent here."""
    client, problem = find_client()
    if client is None:
        pytest.skip(problem)
    env = ClaudeEnv(tmp_path)
    try:
        yield env
    finally:
        env.close()


def test_a_real_claude_task_records_its_answer_and_session_and_resumes_it(
    bare_cc: ClaudeEnv,
) -> None:
    api = bare_cc.serve([Text("the first answer"), Text("the second answer")])
    proc = bare_cc.jobgate("task", "--agent", "claude", "--json", "--model", "claude-e2e", "hi")
    job = json.loads(proc.stdout)["job"]
    assert job["status"] == "completed", (job, bare_cc.jobgate("log", job["id"]).stdout)
    assert job["output"] == "the first answer"
    sid = job["agentSessionId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", sid), sid
    result = json.loads(bare_cc.jobgate("result", job["id"], "--json").stdout)
    assert result["continueCommand"] == f"claude --resume {sid}"
    assert api.main_requests()[0]["model"] == "claude-e2e"  # --model reached the client

    proc = bare_cc.jobgate("task", "--resume", "--json", "and then?")
    again = json.loads(proc.stdout)["job"]
    assert again["status"] == "completed", (again, bare_cc.jobgate("log", again["id"]).stdout)
    assert again["resumedFrom"] == job["id"] and again["output"] == "the second answer"
    assert again["agentSessionId"] == sid
    last = api.main_requests()[-1]
    assert messages_with(last, "hi", role="user") and messages_with(last, "and then?", role="user")


# -- codex exec through jobgate --------------------------------------------------------------
@pytest.fixture
def cx(tmp_path: Path) -> Iterator[CodexEnv]:
    binary, problem = find_codex()
    if binary is None:
        pytest.skip(problem)
    env = CodexEnv(tmp_path, ["the codex answer", "the codex follow-up"])
    try:
        yield env
    finally:
        env.close()


def test_a_real_codex_task_records_its_answer_and_thread_and_resumes_it(cx: CodexEnv) -> None:
    data = cx.task("--effort", "high", "say hi")
    job = data["job"]
    assert job["status"] == "completed" and job["output"] == "the codex answer"
    thread = job["agentSessionId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", thread), thread
    assert data["continueCommand"] == f"codex resume {thread}"
    log = cx.jobgate("log", job["id"]).stdout
    assert f"session id: {thread}" in log  # read from the banner on stderr
    [first] = cx.api.model_requests()
    assert first["reasoning"]["effort"] == "high"  # --effort reached the model call

    again = cx.task("--resume", job["id"], "--model", "gpt-e2e-2", "and now?")["job"]
    assert again["status"] == "completed" and again["output"] == "the codex follow-up"
    assert again["agentSessionId"] == thread and again["resumedFrom"] == job["id"]
    second = cx.api.model_requests()[-1]
    assert second["model"] == "gpt-e2e-2"
    said = texts_of(second)  # a resume sends the earlier conversation again
    assert any("say hi" in t for t in said) and any("the codex answer" in t for t in said)
    assert any("and now?" in t for t in said)
    assert not cx.api.errors
