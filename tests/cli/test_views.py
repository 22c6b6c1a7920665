"""What a human sees in ``status`` and ``result`` (issue 14, items 6 and 9): fixed
columns, record text escaped and capped, log tails cut to the terminal and read safely
(a FIFO or a symlink to ``/dev/zero`` as the log), queued jobs apart from running ones,
how many finished jobs the recent view leaves out, and a marker where ``result``'s
output lost its beginning."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Env, start_running
from jobgate.state import model
from jobgate.state.store import Store

pytestmark = pytest.mark.timeout(60)

#: a CLI call that should take a fraction of a second; past this it is hanging
HANG = 10.0
T0 = time.time() - 3600


def _seed(store: Store, job_id: str, at: float, **fields: Any) -> model.Job:
    """Put a finished job into the index as a hand-edited (or forged) record would be."""
    job = model.new_job(
        job_id=job_id, command=["true"], cwd="/", log_file=f"/nonexistent/{job_id}.log", now=T0 + at
    )
    job.update(status=model.COMPLETED, phase="done", exitCode=0, completedAt=job["createdAt"])
    job.update(fields)
    with store.transaction() as tx:
        tx.put(job)
    return job


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _row(text: str, job_id: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(f"  {job_id}")]
    return line


def _wait_for_log(path: str, needle: bytes) -> None:
    deadline = time.monotonic() + HANG
    while needle not in Path(path).read_bytes():
        assert time.monotonic() < deadline, f"{needle!r} never reached {path}"
        time.sleep(0.05)


# -- item 9 (a): columns -----------------------------------------------------------------
def test_rows_keep_their_columns_when_a_job_has_no_exit_code(jg: Env) -> None:
    store = jg.store()
    _seed(store, "run-aaaa-000001", 1, name="has an exit code")
    _seed(
        store,
        "run-aaaa-000002",
        2,
        name="cancelled before it ran",
        status=model.CANCELLED,
        phase="cancelled",
        exitCode=None,
    )
    _seed(
        store,
        "run-aaaa-000003",
        3,
        name="lost",
        status=model.FAILED,
        phase=model.PHASE_LOST,
        exitCode=None,
        errorMessage="its processes are gone",
    )
    text = _ok(jg.cli("status", timeout=HANG))
    rows = [_row(text, f"run-aaaa-00000{n}") for n in (1, 2, 3)]
    assert "exit 0" in rows[0]
    assert len({row.index("— ") for row in rows}) == 1, rows  # the names line up
    assert "failed (lost)" in rows[2]


# -- item 9 (b): record text -------------------------------------------------------------
def test_names_errors_and_commands_with_control_characters_are_shown_escaped_and_capped(
    jg: Env,
) -> None:
    store = jg.store()
    evil = "two\nlines\x1b[2J\ttab\x07\u202edlrow"
    _seed(
        store,
        "run-bbbb-000001",
        1,
        name=evil,
        status=model.FAILED,
        phase="failed",
        exitCode=1,
        errorMessage="boom\n\x1b]0;owned\x07" + "e" * 2000,
        command=["printf", "a\nb\x1b[31m"],
    )
    _seed(store, "run-bbbb-000002", 2, name="n" * 5000)
    for args in (("status",), ("status", "run-bbbb-000001"), ("result", "run-bbbb-000001")):
        proc = jg.cli(*args, timeout=HANG)
        assert "Traceback" not in proc.stderr, proc.stderr
        out = proc.stdout
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", out), (args, out)
        assert "boom\\n\\x1b]0;owned\\x07eee" in out, (args, out)
        if args[0] == "status":
            assert "two\\nlines\\x1b[2J\\ttab\\x07\\u202edlrow" in out, (args, out)
        assert all(len(line) <= 1100 for line in out.splitlines()), args
    listing = _ok(jg.cli("status", timeout=HANG))
    long_row = _row(listing, "run-bbbb-000002")
    assert long_row.endswith("…") and len(long_row) < 200, long_row
    error_line = next(ln for ln in listing.splitlines() if "boom" in ln)
    assert error_line.endswith("…") and len(error_line) < 300, error_line
    detail = _ok(jg.cli("status", "run-bbbb-000001", timeout=HANG))
    assert "printf 'a\\nb\\x1b[31m'" in detail


# -- item 9 (c): log tails ---------------------------------------------------------------
def _running_with_output(jg: Env) -> dict[str, Any]:
    """A running job whose log ends with a 300-column red line."""
    code = (
        "import sys, time\n"
        "sys.stdout.write('\\x1b[31m' + 'z' * 300 + '\\x1b[0m\\n')\n"
        "sys.stdout.flush()\n"
        "time.sleep(300)\n"
    )
    job = start_running(jg, sys.executable, "-c", code, name="tail")
    _wait_for_log(job["logFile"], b"zzz")
    return job


def test_log_tail_lines_are_cut_to_the_terminal_width_and_escaped(jg: Env) -> None:
    job = _running_with_output(jg)
    for args in (("status",), ("status", job["id"])):
        out = _ok(jg.cli(*args, env={"COLUMNS": "40"}, timeout=HANG))
        tails = [ln for ln in out.splitlines() if ln.lstrip().startswith("| ")]
        assert tails, out
        assert all(len(ln) <= 40 for ln in tails), tails
        assert "\x1b" not in out
        red = [ln for ln in tails if "zzz" in ln]
        assert red and red[0].lstrip().startswith("| \\x1b[31mzzz") and red[0].endswith("…")
    wide = _ok(jg.cli("status", env={"COLUMNS": "120"}, timeout=HANG))
    assert max(len(ln) for ln in wide.splitlines() if "zzz" in ln) == 120


def test_a_fifo_as_the_log_of_a_running_job_does_not_hang_status(jg: Env) -> None:
    job = _running_with_output(jg)
    log = job["logFile"]
    os.unlink(log)
    os.mkfifo(log)
    for args in (("status",), ("status", job["id"])):
        started = time.monotonic()
        out = _ok(jg.cli(*args, timeout=HANG))  # raises TimeoutExpired if it hangs
        assert time.monotonic() - started < HANG
        assert job["id"] in out and "running" in out
        assert "zzz" not in out


def _status_with_memory_cap(jg: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """``jobgate ARGS`` with its address space capped at 1 GiB, so a log read without
    bound fails fast (MemoryError) instead of eating the machine's memory."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "jobgate", *args],
        cwd=jg.workspace,
        env=jg.env,
        capture_output=True,
        text=True,
        timeout=HANG,
        stdin=subprocess.DEVNULL,
        preexec_fn=cap,
    )


def test_a_log_that_is_a_symlink_to_dev_zero_is_not_read(jg: Env) -> None:
    job = _running_with_output(jg)
    log = job["logFile"]
    os.unlink(log)
    os.symlink("/dev/zero", log)
    for args in (("status",), ("status", job["id"])):
        out = _ok(_status_with_memory_cap(jg, *args))
        assert job["id"] in out and "running" in out
        assert not [ln for ln in out.splitlines() if ln.lstrip().startswith("| ")], out


# -- item 9 (d), (e): sections and what is left out --------------------------------------
def test_queued_jobs_have_their_own_section_not_running(jg: Env) -> None:
    store = jg.store()
    queued = model.new_job(
        job_id="run-cccc-000001", command=["true"], cwd="/", log_file="/nonexistent/q.log"
    )
    with store.transaction() as tx:  # launched, its worker not started yet
        tx.put(queued)
    text = _ok(jg.cli("status", timeout=HANG))
    lines = text.splitlines()
    assert "queued (1):" in lines, text
    assert not any(ln.startswith("running (") for ln in lines), text
    assert lines.index("queued (1):") < lines.index(_row(text, "run-cccc-000001"))


def test_the_recent_view_says_how_many_finished_jobs_it_leaves_out(jg: Env) -> None:
    store = jg.store()
    assert jg.cli("config", "set", "maxJobs", "100").returncode == 0
    for n in range(8):
        _seed(store, f"run-dddd-{n:06d}", n)
    text = _ok(jg.cli("status", timeout=HANG))
    assert "recent (8):" in text and "more: jobgate status --all" not in text
    assert jg.cli_json("status")["finishedNotShown"] == 0
    for n in range(8, 22):
        _seed(store, f"run-dddd-{n:06d}", n)
    text = _ok(jg.cli("status", timeout=HANG))
    assert "recent (10):" in text
    assert "12 more: jobgate status --all" in text.splitlines()[-1]
    data = jg.cli_json("status")
    assert data["finishedNotShown"] == 12 and len(data["jobs"]) == 10
    everything = _ok(jg.cli("status", "--all", timeout=HANG))
    assert "finished (22):" in everything and "more:" not in everything


# -- item 6: result's cut output ---------------------------------------------------------
LINES = 20000
LINE = "line {:05d} " + "x" * 19
LINE_BYTES = len(LINE.format(0)) + 1  # 31: 64 KiB is not a multiple of it


def _progress_bytes(log: Path, words: bytes) -> int:
    (line,) = [ln for ln in log.read_bytes().splitlines(keepends=True) if words in ln]
    return len(line)


def test_result_says_where_its_output_was_cut_and_starts_at_a_whole_line(jg: Env) -> None:
    code = f"for i in range({LINES}): print({LINE!r}.format(i))"
    run = jg.cli("run", "--", sys.executable, "-c", code, timeout=HANG)
    assert run.returncode == 0, run.stderr
    data = jg.cli_json("result")
    job = data["job"]
    log = Path(job["logFile"])
    # what the command wrote after the output offset: its lines and jobgate's "running" line
    written = LINES * LINE_BYTES + _progress_bytes(log, b"] jobgate: running, command pid")
    assert data["outputTruncated"] is True and data["logFile"] == str(log)
    assert data["outputOmittedBytes"] == written - 64 * 1024
    assert data["outputStartsMidLine"] is True

    text = _ok(jg.cli("result", timeout=HANG))
    body = text.partition("--- output ---\n")[2]
    marker, _, shown = body.partition("\n")
    found = re.fullmatch(r"\[\.\.\. first ([\d,]+) bytes not shown; full log: (.+)\]", marker)
    assert found, marker
    assert found.group(2) == str(log)
    lines = shown.splitlines()
    assert all(re.fullmatch(r"line \d{5} x{19}", ln) for ln in lines), lines[:2]
    assert lines[-1] == LINE.format(LINES - 1)
    assert int(found.group(1).replace(",", "")) + len(shown) == written


def test_result_of_one_long_unfinished_line_says_it_starts_mid_line(jg: Env) -> None:
    code = "import sys; sys.stdout.write('y' * 100000)"  # no newline at the end
    brief = jg.start(sys.executable, "-c", code)
    jg.wait_for(brief["id"], model.is_finished)
    data = jg.cli_json("result", brief["id"])
    log = Path(data["job"]["logFile"])
    written = 100000 + _progress_bytes(log, b"] jobgate: running, command pid")
    assert data["outputTruncated"] is True
    assert data["outputOmittedBytes"] == written - 64 * 1024
    text = _ok(jg.cli("result", brief["id"], timeout=HANG))
    marker, shown = text.partition("--- output ---\n")[2].split("\n")[:2]
    assert f"first {written - 64 * 1024:,} bytes not shown" in marker
    assert "mid-line" in marker and str(log) in marker
    assert shown == "y" * (64 * 1024)


def test_result_of_uncut_output_shows_no_marker(jg: Env) -> None:
    assert jg.cli("run", "--", "printf", "one\\ntwo\\n", timeout=HANG).returncode == 0
    text = _ok(jg.cli("result", timeout=HANG))
    assert text.endswith("--- output ---\none\ntwo\n"), text
    data = jg.cli_json("result")
    assert data["outputTruncated"] is False and data["outputOmittedBytes"] == 0
    assert data["logFile"] == data["job"]["logFile"]
    assert json.dumps(data)  # plain JSON


_TALKY_AGENT = """#!{python}
import sys
for _ in range(1000):
    print("w" * 199)  # 200 KB of progress to the log
with open(sys.argv[1], "w") as fh:  # its final message, short
    fh.write("the short final answer\\n")
print("the short final answer")  # and printed last, as agents do
"""


def test_an_agents_short_final_message_is_not_called_cut_however_long_its_log(
    jg: Env, tmp_path: Path
) -> None:
    script = tmp_path / "talky-agent"
    script.write_text(_TALKY_AGENT.format(python=sys.executable))
    script.chmod(0o755)
    template = json.dumps([str(script), "{lastMessageFile}", "{prompt}"])
    assert jg.cli("config", "set", "agents.talky", template).returncode == 0
    task = jg.cli("task", "--agent", "talky", "go", timeout=HANG)
    assert task.returncode == 0, task.stderr
    data = jg.cli_json("result")
    assert data["job"]["output"] == "the short final answer\n"
    assert data["outputTruncated"] is False and data["outputOmittedBytes"] == 0
    assert _ok(jg.cli("result", timeout=HANG)).endswith("--- output ---\nthe short final answer\n")
