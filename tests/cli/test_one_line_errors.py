"""Every error is one line (issue 14, items 11a and 12): a kind that is not a safe id
prefix is refused, not rewritten; arguments with newlines or escape sequences are echoed
escaped; with ``--json`` the error is one JSON object on stderr (stdout stays empty); a
hook payload with a NUL in ``cwd`` or nested too deeply fails open with a clear line."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import Env, assert_fail_open, hook_payload, run_hook

pytestmark = pytest.mark.timeout(90)

#: deeper than Python's recursion limit lets json.loads go
DEEP = 100_000


def one_error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """Exit ``code``, nothing on stdout, one ``jobgate: error:`` line on stderr that
    holds no control character (a raw newline would have made it two)."""
    assert proc.returncode == code, proc
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    (line,) = lines
    assert line.startswith("jobgate: error: "), line
    assert not [c for c in line if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0], line
    return line


# -- item 11a: --kind ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bad kind!", "Build", "-x", "_x", "k" * 17, "", "k\u00e9"])
def test_a_kind_that_would_have_to_be_rewritten_is_refused_and_nothing_is_recorded(
    jg: Env, kind: str
) -> None:
    line = one_error_line(jg.cli("run", f"--kind={kind}", "--", "true"), 2)
    assert "invalid kind" in line
    assert "1 to 16 of a-z, 0-9, '-' and '_'" in line  # the allowed characters, named
    assert not jg.home.exists()  # refused before anything was written


def test_a_kind_is_the_id_prefix_exactly_as_given_or_refused(jg: Env) -> None:
    proc = jg.cli("run", "--kind", "build_2", "--", "true")
    assert proc.returncode == 0, proc.stderr
    (job,) = jg.cli_json("status")["jobs"]
    assert job["kind"] == "build_2" and job["id"].startswith("build_2-")
    # "Build" was kind "Build" with the id "build-...": refused now, never rewritten
    assert "invalid kind 'Build'" in one_error_line(
        jg.cli("run", "--kind", "Build", "--", "true"), 2
    )
    assert len(jg.cli_json("status")["jobs"]) == 1


# -- item 12: one line, escaped ---------------------------------------------------------
def test_an_argument_with_a_newline_and_an_escape_is_echoed_escaped(jg: Env) -> None:
    where = "/no\nsuch\x1b[2J"
    line = one_error_line(jg.cli("--cwd", where, "status"), 2)
    assert line.endswith("/no\\nsuch\\x1b[2J")
    line = one_error_line(jg.cli("status", "--cwd", where, "--all"), 2)
    assert line.endswith("/no\\nsuch\\x1b[2J")


def test_a_command_that_cannot_run_is_named_escaped_on_the_terminal_and_in_the_log(
    jg: Env,
) -> None:
    proc = jg.cli("run", "--", "no\nsuch\x1b[31m")
    assert proc.returncode == 127
    lines = proc.stderr.splitlines()
    assert lines == ["jobgate: error: command not found: no\\nsuch\\x1b[31m"], proc.stderr
    (job,) = jg.cli_json("status")["jobs"]
    log = jg.cli("log", job["id"]).stdout
    assert "command not found: no\\nsuch\\x1b[31m\n" in log and "\x1b" not in log


def test_json_nested_too_deeply_in_an_argument_is_one_clear_line(jg: Env) -> None:
    line = one_error_line(jg.cli("config", "set", "agents.deep", "[" * DEEP), 2)
    assert "nested too deeply" in line
    assert not jg.home.exists() or "agents.deep" not in jg.cli("config", "get").stdout


# -- item 12: --json --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["status", "no-such-job", "--json"], 2, "no job matches"),
        (["--cwd", "/no\nsuch", "status", "--json"], 2, "does not exist: /no\nsuch"),
        (["run", "--json", "--kind", "bad kind!", "--", "true"], 2, "invalid kind"),
        (["wait", "--json", "--timeout", "soon"], 2, "expected seconds"),
        (["result", "--json"], 1, "no finished job"),
        (["config", "get", "noSuchKey", "--json"], 2, "unknown config key"),
        (["sweep", "--json", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ],
)
def test_with_json_an_error_is_one_json_object_on_stderr_and_stdout_is_empty(
    jg: Env, args: list[str], code: int, words: str
) -> None:
    proc = jg.cli(*args)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    error = json.loads(lines[0])
    assert error == {"error": error["error"], "exitCode": code}
    assert words in error["error"]


def test_a_json_flag_that_belongs_to_the_command_leaves_errors_as_text(jg: Env) -> None:
    proc = jg.cli("run", "--kind", "bad kind!", "--", "jq", "--json")
    assert "invalid kind" in one_error_line(proc, 2)


# -- item 12: hook payloads -------------------------------------------------------------
@pytest.mark.parametrize("event", ["stop", "user-prompt-submit", "session-end"])
def test_a_hook_payload_whose_cwd_holds_a_nul_fails_open_naming_the_field(
    jg: Env, event: str
) -> None:
    payload = hook_payload(jg, event, cwd=f"{jg.workspace}\0/x")
    line = assert_fail_open(run_hook(jg, event, payload))
    assert line == (
        f"jobgate hook {event}: payload field 'cwd' contains a NUL character; "
        "the hook did nothing (it fails open)"
    )


@pytest.mark.parametrize("payload", ["[" * DEEP, '{"a": ' * DEEP])
def test_a_hook_payload_nested_too_deeply_fails_open_as_not_valid_json(
    jg: Env, payload: str
) -> None:
    line = assert_fail_open(run_hook(jg, "stop", payload))
    assert line == (
        "jobgate hook stop: the hook payload is not valid JSON (nested too deeply); "
        "the hook did nothing (it fails open)"
    )
