"""The Claude Code plugin: manifests, hooks.json and slash commands are well formed (and
pass the real client's ``claude plugin validate --strict`` when it is installed), and
every hook works when run as Claude Code 2.1.197 runs it — ``${CLAUDE_PLUGIN_ROOT}``
replaced as text in ``command`` and each of ``args``, then spawned without a shell (exec
form) — with jobgate on PATH, without it, with a broken one, and from a plugin folder
whose path no shell could parse."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import jobgate
from conftest import SRC, Env, hook_payload, start_running
from jobgate.state import config

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "jobgate"
HOOKS_JSON = PLUGIN / "hooks" / "hooks.json"
EVENT_OF = {
    "SessionStart": "session-start",
    "UserPromptSubmit": "user-prompt-submit",
    "Stop": "stop",
    "SessionEnd": "session-end",
    "StopFailure": "stop-failure",
}
COMMANDS = (
    *("task", "status", "result", "cancel", "log", "setup", "wait"),
    *("review", "adversarial-review", "diff", "apply"),
)
#: slash commands whose jobgate command is another name
CALLS = {"setup": "config", "adversarial-review": "review"}
BASE_PATH = "/usr/bin:/bin"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _hook_commands() -> dict[str, list[dict[str, Any]]]:
    """``{event: [command hook, ...]}`` from hooks.json."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event, groups in _load(HOOKS_JSON)["hooks"].items():
        for group in groups:
            out.setdefault(event, []).extend(group["hooks"])
    return out


# -- structure ---------------------------------------------------------------------------------
def test_marketplace_lists_the_plugin_at_its_folder() -> None:
    market = _load(REPO / ".claude-plugin" / "marketplace.json")
    assert market["name"] and market["owner"]["name"]
    (entry,) = market["plugins"]
    assert entry["name"] == "jobgate"
    assert entry["source"].startswith("./")
    assert (REPO / entry["source"]).resolve() == PLUGIN
    assert entry["version"] == jobgate.__version__


def test_plugin_manifest_names_the_plugin_and_its_version() -> None:
    manifest = _load(PLUGIN / ".claude-plugin" / "plugin.json")
    assert manifest["name"] == "jobgate"
    assert manifest["version"] == jobgate.__version__
    assert manifest["description"]
    assert re.fullmatch(r"[a-z0-9-]+", manifest["name"])


def test_hooks_json_wires_each_event_to_the_wrapper_in_exec_form_with_its_own_timeout() -> None:
    hooks = _hook_commands()
    assert set(hooks) == set(EVENT_OF)
    for event, entries in hooks.items():
        (entry,) = entries
        assert entry["type"] == "command"
        # exec form: no shell parses the plugin's path or the event name
        assert entry["command"] == "${CLAUDE_PLUGIN_ROOT}/scripts/hook.sh"
        assert entry["args"] == [EVENT_OF[event]]
        # without its own timeout a SessionEnd hook gets Claude Code's 1.5 s
        assert isinstance(entry["timeout"], int) and entry["timeout"] > 0


def test_session_end_timeout_outlasts_the_cleanup_wait() -> None:
    from jobgate.claude.cleanup import SESSION_END_WAIT

    (end,) = _hook_commands()["SessionEnd"]
    # Claude Code caps the SessionEnd hooks at 60 s in all; the hook waits up to
    # SESSION_END_WAIT for its detached cleanup, which then finishes on its own
    assert SESSION_END_WAIT < end["timeout"] <= 60


def test_the_real_client_validates_the_plugin_and_the_marketplace(tmp_path: Path) -> None:
    from e2e.claude_env import find_client

    client, problem = find_client()
    if client is None:
        pytest.skip(problem)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
    for target in (PLUGIN, REPO):
        proc = subprocess.run(
            [str(client), "plugin", "validate", "--strict", str(target)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Validation passed" in proc.stdout


def test_stop_timeout_leaves_room_for_the_default_review_timeout() -> None:
    (stop,) = _hook_commands()["Stop"]
    assert stop["timeout"] > config.DEFAULTS["reviewTimeout"]


def test_wrapper_is_executable_posix_sh() -> None:
    script = PLUGIN / "scripts" / "hook.sh"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(script)], check=True)


@pytest.mark.parametrize("name", COMMANDS)
def test_slash_command_has_frontmatter_and_calls_the_cli(name: str) -> None:
    text = (PLUGIN / "commands" / f"{name}.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, f"{name}.md has no frontmatter"
    fields = dict(line.split(":", 1) for line in match.group(1).splitlines() if ":" in line)
    assert fields.get("description", "").strip()
    assert "allowed-tools" in fields
    assert "$ARGUMENTS" in text
    called = CALLS.get(name, name)
    assert f"jobgate {called}" in text


def _frontmatter(path: Path) -> tuple[dict[str, str], str]:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, f"{path.name} has no frontmatter"
    fields = dict(line.split(":", 1) for line in match.group(1).splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in fields.items()}, text[match.end() :]


def test_task_command_knows_the_thread_and_model_options() -> None:
    fields, body = _frontmatter(PLUGIN / "commands" / "task.md")
    for option in ("--resume", "--fresh", "--model", "--effort", "--worktree"):
        assert option in fields["argument-hint"] and option in body, option
    assert "- <<'JOBGATE_TASK_PROMPT'" in body  # the prompt still goes through stdin


def test_plugin_subagent_delegates_through_a_background_task_and_only_bash() -> None:
    agents = sorted((PLUGIN / "agents").glob("*.md"))
    assert [a.name for a in agents] == ["jobgate-delegate.md"]
    fields, body = _frontmatter(agents[0])
    assert fields["name"] == "jobgate-delegate" == agents[0].stem
    assert len(fields["description"]) > 40
    assert fields["tools"] == "Bash"  # it starts a job; it reads and edits nothing
    assert "jobgate task --background --json" in body and "- <<'JOBGATE_TASK_PROMPT'" in body
    assert "never wait" in body


def test_setup_command_turns_the_review_gate_on_and_off() -> None:
    text = (PLUGIN / "commands" / "setup.md").read_text(encoding="utf-8")
    assert "jobgate config set stopReviewGate true" in text
    assert "jobgate config set stopReviewGate false" in text
    assert "command -v jobgate" in text and "pipx install /path/to/jobgate" in text


# -- running the hooks as Claude Code does ---------------------------------------------------------
@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A folder with an executable ``jobgate`` that runs this checkout's jobgate."""
    folder = tmp_path / "shim-bin"
    folder.mkdir()
    exe = folder / "jobgate"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{SRC}" exec "{sys.executable}" -m jobgate "$@"\n')
    exe.chmod(0o755)
    return folder


def _claude_argv(entry: dict[str, Any], root: Path) -> list[str]:
    """What Claude Code 2.1.197 spawns for a command hook: ``${CLAUDE_PLUGIN_ROOT}``
    replaced as text, then ``command`` + ``args`` run as they are (exec form) or, without
    ``args``, ``command`` run by a shell (shell form)."""

    def put(text: str) -> str:
        return text.replace("${CLAUDE_PLUGIN_ROOT}", str(root))

    if "args" in entry:
        return [put(entry["command"]), *(put(a) for a in entry["args"])]
    return ["sh", "-c", put(entry["command"])]


def _run_as_claude(
    jg: Env,
    event: str,
    payload: dict[str, Any] | str,
    path: str,
    root: Path = PLUGIN,
    **extra_env: str,
) -> subprocess.CompletedProcess[str]:
    (entry,) = _hook_commands()[event]
    env = dict(jg.env)
    env.update(extra_env)
    env["PATH"] = path
    env["CLAUDE_PLUGIN_ROOT"] = str(root)
    env["CLAUDE_PROJECT_DIR"] = str(jg.workspace)
    return subprocess.run(
        _claude_argv(entry, root),
        input=payload if isinstance(payload, str) else json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        cwd=jg.workspace,
        timeout=60,
    )


def test_every_hook_command_runs_through_the_wrapper(jg: Env, shim: Path, tmp_path: Path) -> None:
    path = f"{shim}:{BASE_PATH}"
    env_file = tmp_path / "claude-env.sh"

    start = _run_as_claude(
        jg,
        "SessionStart",
        hook_payload(jg, "session-start", "sess-1", source="startup"),
        path,
        CLAUDE_ENV_FILE=str(env_file),
    )
    assert (start.returncode, start.stdout, start.stderr) == (0, "", "")
    assert env_file.read_text() == "export JOBGATE_SESSION_ID='sess-1'\n"

    done = jg.start("true", session="sess-1", name="quick")
    jg.wait_for(done["id"], lambda j: j["status"] == "completed")
    running = start_running(jg, "sleep", "300", session="sess-1")

    prompt = _run_as_claude(
        jg, "UserPromptSubmit", hook_payload(jg, "user-prompt-submit", "sess-1", prompt="hi"), path
    )
    assert prompt.returncode == 0, prompt.stderr
    context = json.loads(prompt.stdout)["hookSpecificOutput"]["additionalContext"]
    assert done["id"] in context and running["id"] not in context

    stop = _run_as_claude(
        jg,
        "Stop",
        hook_payload(jg, "stop", "sess-1", stop_hook_active=False, last_assistant_message="done"),
        path,
    )
    assert stop.returncode == 0
    assert f"jobgate cancel {running['id']}" in json.loads(stop.stdout)["systemMessage"]
    assert f"jobgate cancel {running['id']}" in stop.stderr

    failure = _run_as_claude(
        jg,
        "StopFailure",
        hook_payload(jg, "stop", "sess-1", hook_event_name="StopFailure", error="rate_limit"),
        path,
    )
    assert failure.returncode == 0 and "decision" not in json.loads(failure.stdout)
    assert running["id"] in failure.stderr

    end = _run_as_claude(
        jg, "SessionEnd", hook_payload(jg, "session-end", "sess-1", reason="other"), path
    )
    assert (end.returncode, end.stdout) == (0, "")
    final = jg.wait_for(running["id"], lambda j: j["status"] != "running", timeout=20)
    assert (final["status"], final["errorMessage"]) == ("cancelled", "session ended")


def _payload_for(jg: Env, event: str) -> dict[str, Any]:
    name = EVENT_OF[event]
    if name == "stop-failure":  # conftest's hook_payload knows the older events only
        return hook_payload(jg, "stop", hook_event_name="StopFailure", error="server_error")
    return hook_payload(jg, name)


@pytest.mark.parametrize("event", list(EVENT_OF))
def test_every_hook_fails_open_when_jobgate_is_not_installed(jg: Env, event: str) -> None:
    if shutil.which("jobgate", path=BASE_PATH):
        pytest.skip(f"a jobgate is installed on {BASE_PATH}")
    proc = _run_as_claude(jg, event, _payload_for(jg, event), BASE_PATH)
    assert (proc.returncode, proc.stdout) == (0, "")
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert "not on PATH" in lines[0] and "pipx install /path/to/jobgate" in lines[0]
    assert EVENT_OF[event] in lines[0]


def test_a_broken_jobgate_never_makes_a_hook_block(jg: Env, tmp_path: Path) -> None:
    folder = tmp_path / "broken-bin"
    folder.mkdir()
    exe = folder / "jobgate"
    # exit status 2 is what would make Claude Code block a Stop
    exe.write_text("#!/bin/sh\necho 'usage: jobgate ...' >&2\nexit 2\n")
    exe.chmod(0o755)
    proc = _run_as_claude(jg, "Stop", hook_payload(jg, "stop"), f"{folder}:{BASE_PATH}")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert "exited with status 2" in proc.stderr


def test_a_bad_payload_through_the_wrapper_fails_open(jg: Env, shim: Path) -> None:
    proc = _run_as_claude(jg, "Stop", "{not json", f"{shim}:{BASE_PATH}")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert len(proc.stderr.splitlines()) == 1 and "not valid JSON" in proc.stderr


#: a plugin folder no shell command line survives: quotes, $(...), backticks, spaces
HOSTILE_DIR = 'it\'s $(touch pwned) `touch pwned2` "q" dir'


@pytest.mark.parametrize("event", list(EVENT_OF))
def test_every_hook_runs_from_a_plugin_path_no_shell_could_parse(
    jg: Env, shim: Path, tmp_path: Path, event: str
) -> None:
    root = tmp_path / HOSTILE_DIR / "jobgate"
    shutil.copytree(PLUGIN, root)
    running = start_running(jg, "sleep", "300", session="s1")
    env_file = tmp_path / "claude-env.sh"
    proc = _run_as_claude(
        jg,
        event,
        _payload_for(jg, event),
        f"{shim}:{BASE_PATH}",
        root=root,
        CLAUDE_ENV_FILE=str(env_file),
    )
    assert proc.returncode == 0, proc.stderr
    assert "not on PATH" not in proc.stderr and "fails open" not in proc.stderr, proc.stderr
    assert "No such file" not in proc.stderr and "not found" not in proc.stderr, proc.stderr
    if event in ("Stop", "StopFailure"):
        assert running["id"] in proc.stderr  # jobgate itself ran and saw the job
    if event == "SessionStart":
        assert env_file.read_text() == "export JOBGATE_SESSION_ID='s1'\n"
    assert not list(jg.workspace.glob("pwned*"))  # nothing in the path was run


@pytest.mark.parametrize("linked", [False, True], ids=["beside", "beside the link's target"])
def test_the_hooks_run_jobgate_hook_when_it_is_installed_beside_jobgate(
    jg: Env, tmp_path: Path, linked: bool
) -> None:
    folder = tmp_path / "venv-bin"
    folder.mkdir()
    # the console script here would fail: the hook passing shows jobgate-hook ran
    (folder / "jobgate").write_text("#!/bin/sh\necho 'the console script ran' >&2\nexit 3\n")
    script = REPO / "scripts" / "jobgate-hook"
    (folder / "jobgate-hook").write_text(
        f'#!/bin/sh\nPYTHONPATH="{SRC}" exec "{sys.executable}" "{script}" "$@"\n'
    )
    for exe in folder.iterdir():
        exe.chmod(0o755)
    on_path = folder
    if linked:  # as a jobgate linked into ~/.local/bin by hand
        on_path = tmp_path / "bin"
        on_path.mkdir()
        (on_path / "jobgate").symlink_to(os.path.relpath(folder / "jobgate", on_path))
    running = start_running(jg, "sleep", "300", session="sess-1")
    stop = _run_as_claude(
        jg,
        "Stop",
        hook_payload(jg, "stop", "sess-1", stop_hook_active=False),
        f"{on_path}:{BASE_PATH}",
    )
    assert stop.returncode == 0 and "console script" not in stop.stderr
    assert f"jobgate cancel {running['id']}" in json.loads(stop.stdout)["systemMessage"]


def test_jobgate_hook_is_installed_beside_the_console_script(jg: Env) -> None:
    here = Path(sys.executable).parent
    if not (here / "jobgate").exists():
        pytest.skip(f"jobgate is not installed beside {sys.executable}")
    fast = here / "jobgate-hook"
    assert os.access(fast, os.X_OK)
    payload = json.dumps(hook_payload(jg, "stop", "sess-1", stop_hook_active=False))
    start_running(jg, "sleep", "300", session="sess-1")
    outputs = []
    for argv in ([str(fast), "stop"], [str(here / "jobgate"), "hook", "stop"]):
        proc = subprocess.run(
            argv,
            input=payload,
            capture_output=True,
            text=True,
            env=jg.env,
            cwd=jg.workspace,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append((proc.stdout, proc.stderr))
    assert outputs[0] == outputs[1] and "jobgate cancel" in outputs[0][0]
