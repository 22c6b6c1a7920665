"""Bytes that are not UTF-8 (in argv, ``$JOBGATE_SESSION_ID``, a workspace folder's name)
round-trip: Python hands them over as lone surrogates (byte 0xff is U+DCFF), the state
files store them as ``\\udcff`` escapes, the command receives the original bytes, human
output prints them back as they came and ``--json`` output is valid UTF-8 JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import Env

pytestmark = pytest.mark.timeout(90)

#: a user's usual UTF-8 locale: stdout refuses what UTF-8 cannot encode (C.UTF-8, this
#: machine's default, would make Python use surrogateescape and hide the bug)
STRICT = {"PYTHONIOENCODING": "utf-8:strict"}

FF = b"\xff"
FF_STR = os.fsdecode(FF)  # "\udcff"


def run_bytes(
    jg: Env, *args: str | bytes, env: dict[str, str | bytes] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``python -m jobgate ARGS`` with byte arguments; stdout/stderr as bytes."""
    full: dict[str | bytes, str | bytes] = {**jg.env, **STRICT, **(env or {})}
    environ = {os.fsencode(k): os.fsencode(v) for k, v in full.items()}
    return subprocess.run(
        [sys.executable, "-m", "jobgate", *args],
        cwd=cwd or jg.workspace,
        env=environ,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def ok(proc: subprocess.CompletedProcess[bytes]) -> bytes:
    assert b"Traceback" not in proc.stderr, proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def json_of(stdout: bytes) -> Any:
    """``--json`` output must be valid UTF-8 (a strict decode), then valid JSON."""
    return json.loads(stdout.decode("utf-8"))


def status_json(jg: Env, *args: str | bytes, cwd: Path | None = None) -> Any:
    return json_of(ok(run_bytes(jg, "status", *args, "--json", cwd=cwd)))


def test_a_non_utf8_argument_reaches_a_foreground_command_as_the_same_byte(jg: Env) -> None:
    proc = run_bytes(jg, "run", "--", "printf", "%s|%s", FF, b"caf\xc3\xa9")
    assert ok(proc) == b"\xff|caf\xc3\xa9"
    (job,) = status_json(jg)["jobs"]
    assert job["status"] == "completed" and job["exitCode"] == 0
    full = status_json(jg, job["id"])["job"]
    assert full["command"] == ["printf", "%s|%s", FF_STR, "café"]


def test_a_non_utf8_argument_reaches_a_background_command_which_completes(jg: Env) -> None:
    brief = json_of(ok(run_bytes(jg, "run", "--background", "--json", "--", "printf", "%s", FF)))
    assert ok(run_bytes(jg, "wait", brief["id"], "--timeout", "30")).startswith(
        brief["id"].encode()
    )
    job = status_json(jg, brief["id"])["job"]
    assert (job["status"], job["exitCode"]) == ("completed", 0)
    assert job["command"] == ["printf", "%s", FF_STR]
    log = Path(job["logFile"]).read_bytes()
    # the command wrote straight to the log: the very byte it was given
    assert re.search(rb"\n\xff", log), log
    shown = ok(run_bytes(jg, "status", brief["id"]))
    assert b"command:     printf %s '\xff'" in shown  # pasted back into sh: the same argv


def test_name_and_session_that_are_not_utf8_are_stored_and_shown(jg: Env) -> None:
    # a kind that is not UTF-8 is refused like any kind outside [a-z0-9_-] (issue 14)
    refused = run_bytes(jg, "run", "--kind", b"k\xffind", "--", "true")
    assert refused.returncode == 2 and b"kind" in refused.stderr
    proc = run_bytes(jg, "run", "--name", b"n\xffm", "--session", FF, "--", "true")
    ok(proc)
    (job,) = status_json(jg)["jobs"]
    assert job["name"] == os.fsdecode(b"n\xffm")
    assert job["sessionId"] == FF_STR
    human = ok(run_bytes(jg, "status"))
    assert b"n\xffm" in human  # the name as it was given, byte for byte
    # the session round-trips: `result` of session \xff finds it
    picked = json_of(ok(run_bytes(jg, "result", "--session", FF, "--json")))["job"]
    assert picked["id"] == job["id"]


def test_a_session_from_the_environment_that_is_not_utf8_round_trips(jg: Env) -> None:
    env = {"JOBGATE_SESSION_ID": FF}
    ok(run_bytes(jg, "run", "--background", "--", "sleep", "30", env=env))
    (job,) = status_json(jg)["jobs"]
    assert job["sessionId"] == FF_STR
    # cancel without a JOB: the session's only active job, found by the same session
    ok(run_bytes(jg, "cancel", "--grace", "1", env=env))
    assert status_json(jg, job["id"])["job"]["status"] == "cancelled"


def test_a_workspace_folder_whose_name_is_not_utf8(jg: Env, tmp_path: Path) -> None:
    folder = os.path.join(os.fsencode(tmp_path), b"d\xffx")
    os.mkdir(folder)
    ok(run_bytes(jg, "--cwd", folder, "run", "--", "true"))
    ok(run_bytes(jg, "run", "--background", "--", "true", cwd=Path(os.fsdecode(folder))))
    data = status_json(jg, "--cwd", folder)
    assert data["workspaceRoot"] == os.fsdecode(folder)
    assert len(data["jobs"]) == 2
    assert all(j["cwd"] == os.fsdecode(folder) for j in data["jobs"])
    assert b"workspace: " + folder + b"\n" in ok(run_bytes(jg, "--cwd", folder, "status"))
    # the state dir's name is made of safe characters
    (state_dir,) = os.listdir(jg.home)
    assert re.fullmatch(r"d-x-[0-9a-f]{16}", state_dir)


def test_state_files_stay_valid_utf8_json_and_readable_text_stays_readable(jg: Env) -> None:
    ok(run_bytes(jg, "run", "--name", b"n\xffm", "--", "true"))
    ok(run_bytes(jg, "run", "--name", "tâche", "--", "true"))
    state = jg.state_dir()
    for path in [state / "active.json", *sorted((state / "jobs").glob("*.json"))]:
        json.loads(path.read_bytes().decode("utf-8"))  # strict UTF-8 everywhere
    for line in (state / "finished.jsonl").read_bytes().splitlines():
        json.loads(line.decode("utf-8"))
    by_name = {}
    for path in (state / "jobs").glob("*.json"):
        by_name[json.loads(path.read_bytes())["name"]] = path.read_bytes()
    assert b'"n\\udcffm"' in by_name[os.fsdecode(b"n\xffm")]
    # a file without undecodable bytes keeps its text as UTF-8, not \u escapes
    assert "tâche".encode() in by_name["tâche"]


def test_output_of_text_no_stream_can_encode_never_crashes(tmp_path: Path) -> None:
    """A lone surrogate that is not an undecodable byte (a JSON "\\ud800" escape in a
    record) is written as an escape; an undecodable byte as itself."""
    script = (
        "import sys; from jobgate.state.fileio import tolerant_stdio; tolerant_stdio(); "
        "sys.stdout.write('a\\udcffb\\ud800c\\n'); sys.stderr.write('e\\udcfe\\n')"
    )
    env = {**os.environ, **STRICT}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=env, timeout=30, check=True
    )
    assert proc.stdout == b"a\xffb\\ud800c\n"
    assert proc.stderr == b"e\xfe\n"


def test_log_lines_keep_undecodable_bytes(jg: Env) -> None:
    ok(run_bytes(jg, "run", "--", "true", FF))
    (job,) = status_json(jg)["jobs"]
    log = Path(job["logFile"]).read_bytes()
    assert b"starting true '\xff'" in log, log  # not '?' or U+FFFD
