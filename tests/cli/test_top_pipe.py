"""``jobgate top`` (and ``status --watch``) when stdout is not a terminal: plain blocks of
text, one per change, with no escape code; or, with ``--json``, one JSON object a line;
ended by a signal with exit 0. And rich stays off every path but the full screen."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from conftest import Env, hook_payload, kill9, start_running
from jobgate.state import model

pytestmark = pytest.mark.timeout(180)


class Output:
    """What a running ``jobgate`` prints, collected by a thread as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.text = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.text += line

    def now(self) -> str:
        with self._lock:
            return self.text

    def wait_for(self, what: str, ok: Callable[[str], bool], timeout: float = 45) -> str:
        deadline = time.monotonic() + timeout
        while not ok(self.now()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"never saw {what}; output:\n{self.now()}")
            time.sleep(0.1)
        return self.now()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self._thread.join(timeout=10)
        return code


def _blocks(text: str) -> list[str]:
    return [b for b in text.split("\n\n") if b.strip()]


def _row(block: str, job_id: str) -> str:
    found = [ln for ln in block.splitlines() if ln.startswith(job_id)]
    return found[0] if found else ""


def test_through_a_pipe_top_prints_a_plain_block_per_change(jg: Env) -> None:
    go = jg.workspace / "go"
    script = f"printf '\\033[31mred\\n'; while [ ! -e {go} ]; do sleep 0.1; done; echo all-done"
    job = start_running(jg, "sh", "-c", script, name="piped")
    out = Output(jg.popen("top", "--interval", "0.2"))
    try:
        first = out.wait_for("the running job", lambda t: "\\x1b[31mred" in _row(t, job["id"]))
        assert "running" in _row(first, job["id"])
        go.touch()
        out.wait_for("its end", lambda t: "completed" in _row(_blocks(t)[-1], job["id"]))
        victim = start_running(jg, "sleep", "120", name="victim")
        out.wait_for("the new job", lambda t: "running" in _row(_blocks(t)[-1], victim["id"]))
        kill9(victim["pid"], victim["commandPid"])
        text = out.wait_for(
            "the killed job lost", lambda t: "failed (lost)" in _row(_blocks(t)[-1], victim["id"])
        )
        # nothing changes any more: ten intervals pass and no block is printed
        count = len(_blocks(text))
        time.sleep(2.0)
        assert len(_blocks(out.now())) == count
        assert "running" not in _row(_blocks(out.now())[-1], victim["id"])
    finally:
        code = out.stop()
    assert code == 0
    assert "\x1b" not in out.now()  # no escape code, the job's own escaped
    assert all(b.splitlines()[0].startswith("jobgate top · ") for b in _blocks(out.now()))
    assert "q: quit" not in out.now()


def test_the_json_twin_prints_one_object_a_line_with_the_queue(jg: Env) -> None:
    running = start_running(jg, "sleep", "120", name="busy")
    store = jg.store()
    for job_id, rank in (("run-q-b", 5), ("run-q-a", 1)):
        queued = model.new_job(job_id=job_id, command=["true"], cwd="/", log_file="/dev/null")
        queued["queueRank"] = rank
        queued["after"] = [running["id"]]  # else the view, a reader, would start it
        with store.transaction() as tx:
            tx.put(queued)
    out = Output(jg.popen("status", "--watch", "--json", "--interval", "0.2"))
    try:
        out.wait_for("a JSON line", lambda t: "\n" in t)
    finally:
        code = out.stop(signal.SIGINT)
    assert code == 0
    objs = [json.loads(line) for line in out.now().splitlines()]
    first = objs[0]
    assert first["counts"] == {"running": 1, "queued": 2, "finished": 0}
    places = {j["id"]: j["queuePosition"] for j in first["jobs"]}
    assert places == {running["id"]: None, "run-q-a": 1, "run-q-b": 2}
    assert [j["id"] for j in first["jobs"]] == [running["id"], "run-q-a", "run-q-b"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["status", "--watch", "run-x"], "drop JOB"),
        (["status", "--watch", "--all"], "drop --all"),
        (["status", "--interval", "2"], "--interval goes with --watch"),
        (["top", "--interval", "0"], "expected seconds from 0.1"),
    ],
)
def test_bad_view_arguments_are_one_line_errors(jg: Env, args: list[str], says: str) -> None:
    proc = jg.cli(*args)
    assert proc.returncode == 2
    assert says in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stdout == ""


def _imported(jg: Env, *args: str, stdin: str | None = None) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jobgate", *args],
        cwd=jg.workspace,
        env=jg.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_rich_stays_off_the_hook_status_and_plain_paths(jg: Env) -> None:
    start_running(jg, "sleep", "60")
    payload = json.dumps(hook_payload(jg, "stop"))
    for args in (("hook", "stop"), ("status",), ("status", "--json"), ("top", "--help")):
        mods = _imported(jg, *args, stdin=payload if args[0] == "hook" else None)
        assert "jobgate.cli.main" in mods or args[0] == "hook", mods
        rich = sorted(m for m in mods if m == "rich" or m.startswith("rich."))
        assert rich == [], (args, rich)
    assert "jobgate.cli.top" not in _imported(jg, "hook", "stop", stdin=payload)


def test_plain_top_never_imports_rich(jg: Env) -> None:
    program = (
        "import os, signal, sys, threading\n"
        "threading.Timer(2, os.kill, (os.getpid(), signal.SIGTERM)).start()\n"
        "from jobgate.cli.main import main\n"
        "code = main(['top', '--json'])\n"
        "rich = sorted(m for m in sys.modules if m.split('.')[0] == 'rich')\n"
        "print(code, rich, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", program],
        cwd=jg.workspace,
        env=jg.env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stderr.strip().splitlines()[-1] == "0 []", proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["counts"]["running"] == 0
