"""``jobgate top`` in a real terminal (tmux): it shows the running and queued jobs, follows
a job to its end at once, shows a SIGKILLed job as lost (and writes it down), redraws at
a new size, and gives the shell its screen and terminal mode back on ``q`` or Ctrl-C."""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tmux_term import Term, needs_tmux, row

from conftest import Env, kill9, start_running
from jobgate.state import model

pytestmark = [needs_tmux, pytest.mark.timeout(240)]

#: after the view: its exit status and the terminal's mode (canonical, echo) as stty says
AFTER = 'echo "top-exit=$?"; stty -a | tr " ;" "\\n\\n" | grep -x -- "-\\{0,1\\}icanon"; exec cat'


@pytest.fixture
def term() -> Iterator[Term]:
    t = Term()
    try:
        yield t
    finally:
        t.kill()


def _script(*top_args: str) -> str:
    top = shlex.join([sys.executable, "-m", "jobgate", "top", *top_args])
    # the shell as an interactive one is: a Ctrl-C for the view does not end it
    return f"trap : INT; echo MARKER-BEFORE-TOP; {top}; {AFTER}"


def _wait_for_log(path: str, needle: bytes) -> None:
    deadline = time.monotonic() + 30
    while needle not in Path(path).read_bytes():
        assert time.monotonic() < deadline, f"{needle!r} never reached {path}"
        time.sleep(0.1)


def _queued(store: Any, job_id: str, **fields: Any) -> None:
    job = model.new_job(job_id=job_id, command=["true"], cwd="/", log_file=store.log_path(job_id))
    job.update(fields)
    with store.transaction() as tx:
        tx.put(job)


def test_top_follows_jobs_live_and_quits_on_q_restoring_the_screen(jg: Env, term: Term) -> None:
    go = jg.workspace / "go"
    wait_go = f"echo working-on-it; while [ ! -e {go} ]; do sleep 0.1; done; echo all-done"
    finisher = start_running(jg, "sh", "-c", wait_go, name="finisher")
    victim = start_running(
        jg, sys.executable, "-c", "import time; print('L' * 300, flush=True); time.sleep(120)",
        name="victim",
    )  # fmt: skip
    store = jg.store()
    # waiting for the finisher: a reader (the view too) starts a queued job it may start
    wait = {"after": [finisher["id"]]}
    _queued(store, "run-queued-second", queueRank=2, **wait)
    _queued(store, "run-queued-first", queueRank=1, **wait)
    _queued(store, "run-queued-gpu", queueRank=9, group="gpu", **wait)

    for job, needle in ((finisher, b"working-on-it"), (victim, b"L" * 300)):
        _wait_for_log(job["logFile"], needle)
    # no redraw by the clock: every change below must wake the view (inotify, a pidfd,
    # SIGWINCH; the 2 s probe while a job no pidfd watches is active, as the queued ones)
    term.start(_script("--interval", "600"), jg.env, jg.workspace, 120, 30)
    lines = term.wait_for(
        "both running jobs with their last lines, and the queue",
        lambda ls: (
            "working-on-it" in row(ls, finisher["id"])
            and row(ls, victim["id"]).endswith("L…")
            and "#2" in row(ls, "run-queued-second")
        ),
    )
    assert "running" in row(lines, finisher["id"]) and "finisher" in row(lines, finisher["id"])
    assert len(row(lines, victim["id"])) == 120  # the last line takes the rest, cut to fit
    assert "  #1  " in row(lines, "run-queued-first")
    assert "gpu#1" in row(lines, "run-queued-gpu")
    assert lines[2].startswith(finisher["id"])  # running first, oldest first
    assert any(ln.startswith("2 running · 3 queued (default 2, gpu 1)") for ln in lines)
    assert "MARKER-BEFORE-TOP" not in "\n".join(lines)  # the alternate screen

    with store.transaction() as tx:  # the queue empties: the view follows the index
        for job_id in ("run-queued-first", "run-queued-second", "run-queued-gpu"):
            tx.remove(job_id)
    term.wait_for("the queue gone", lambda ls: not row(ls, "run-queued-first"))

    go.touch()
    lines = term.wait_for("the finished job", lambda ls: "completed" in row(ls, finisher["id"]))
    assert row(lines, finisher["id"]).endswith("all-done")

    kill9(victim["pid"], victim["commandPid"])  # from outside: nobody writes its end
    lines = term.wait_for(
        "the killed job lost", lambda ls: "failed (lost)" in row(ls, victim["id"])
    )
    assert "running" not in row(lines, victim["id"])
    # the view wrote it down, as any reader does (read here without reconciling)
    written = store.read_job(victim["id"])
    assert written["status"] == "failed" and written["phase"] == "lost", written

    term.resize(60, 12)
    lines = term.wait_for(
        "the view redrawn at 60 columns",
        lambda ls: any(ln.endswith("q: quit") and len(ln) == 60 for ln in ls),
    )
    assert lines[0].startswith("jobgate top · ") and len(lines[0]) == 60  # the clock: right edge
    assert row(lines, victim["id"]).endswith("…")  # its error, cut to the new width

    term.keys("q")
    lines = term.wait_for("the shell's screen back", lambda ls: "top-exit=0" in ls)
    text = "\n".join(lines)
    assert "MARKER-BEFORE-TOP" in text and "STATUS" not in text
    assert "icanon" in lines and "-icanon" not in lines  # the terminal's mode restored


def test_ctrl_c_ends_top_with_exit_0_and_the_terminal_restored(jg: Env, term: Term) -> None:
    jg.store()
    term.start(_script("--interval", "600"), jg.env, jg.workspace, 80, 20)
    term.wait_for("the empty view", lambda ls: any("no running or queued jobs" in ln for ln in ls))
    brief = jg.start("sleep", "60", name="late")
    lines = term.wait_for(
        "a job started after the view opened", lambda ls: bool(row(ls, brief["id"]))
    )
    assert "late" in row(lines, brief["id"])
    started = time.monotonic()
    term.keys("C-c")
    lines = term.wait_for("the shell's screen back", lambda ls: "top-exit=0" in ls)
    assert time.monotonic() - started < 30
    assert "MARKER-BEFORE-TOP" in "\n".join(lines)
    assert "icanon" in lines and "-icanon" not in lines


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for job control")
def test_ctrl_z_gives_the_shell_its_screen_and_fg_brings_the_view_back(jg: Env, term: Term) -> None:
    jg.store()
    top = shlex.join([sys.executable, "-m", "jobgate", "top", "--interval", "600"])
    shell = "exec env HISTFILE= PS1='$ ' bash --norc --noprofile -i"
    term.start(shell, jg.env, jg.workspace, 80, 20)
    term.wait_for("the prompt", lambda ls: any(ln.startswith("$") for ln in ls))
    term.keys(f"echo MARKER-BEFORE-TOP; {top}", "Enter")
    empty = "no running or queued jobs"
    term.wait_for("the view", lambda ls: any(empty in ln for ln in ls))

    term.keys("C-z")
    lines = term.wait_for("the shell back", lambda ls: any("Stopped" in ln for ln in ls))
    assert "MARKER-BEFORE-TOP" in "\n".join(lines) and "STATUS" not in "\n".join(lines)
    term.keys("stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\{0,1\\}icanon'", "Enter")
    term.wait_for("the shell's own terminal mode", lambda ls: "icanon" in ls)

    brief = jg.start("sleep", "60", name="while-stopped")
    term.keys("fg", "Enter")
    lines = term.wait_for("the view again, with the new job", lambda ls: bool(row(ls, brief["id"])))
    assert "MARKER-BEFORE-TOP" not in "\n".join(lines)
    term.keys("q")
    term.wait_for("the prompt after q", lambda ls: bool(ls) and "STATUS" not in "\n".join(ls))
    term.keys("echo top-exit=$?", "Enter")
    lines = term.wait_for("its exit status", lambda ls: "top-exit=0" in ls)
    assert "MARKER-BEFORE-TOP" in "\n".join(lines)
