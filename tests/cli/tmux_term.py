"""A real terminal for tests: a tmux server of the test's own (``tmux -L``), one pane
running a shell script, read with ``capture-pane``; killed with everything under it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

#: environment passed into the pane (nothing else of the test's leaks in)
KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "JOBGATE_HOME", "PYTHONPATH")


class Term:
    def __init__(self) -> None:
        self.name = f"jobgate-top-{uuid.uuid4().hex[:12]}"
        self.procs: dict[int, psutil.Process] = {}
        self.socket = ""

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.name, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )

    def start(self, script: str, env: dict[str, str], cwd: Path, cols: int, rows: int) -> None:
        inner = {k: env[k] for k in KEEP if k in env}
        inner.setdefault("LANG", "C.UTF-8")
        started = self(
            "new-session", "-d", "-s", "t", "-x", str(cols), "-y", str(rows), "-c", str(cwd),
            "env", "-i", *[f"{k}={v}" for k, v in inner.items()], "TERM=xterm-256color",
            "sh", "-c", script,
        )  # fmt: skip
        assert started.returncode == 0, started
        self.remember()

    def remember(self) -> None:
        """Note the server and everything under it, to be killed at the end."""
        out = self("display-message", "-p", "-t", "t", "#{pid} #{socket_path}").stdout.strip()
        pid, _, socket = out.partition(" ")
        self.socket = self.socket or socket
        if pid.isdigit():
            try:
                server = psutil.Process(int(pid))
                for proc in [server, *server.children(recursive=True)]:
                    self.procs.setdefault(proc.pid, proc)
            except psutil.Error:
                pass

    def keys(self, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", "t", key)

    def resize(self, cols: int, rows: int) -> None:
        done = self("resize-window", "-t", "t", "-x", str(cols), "-y", str(rows))
        assert done.returncode == 0, done

    def lines(self) -> list[str]:
        return self("capture-pane", "-p", "-t", "t").stdout.splitlines()

    def wait_for(
        self, what: str, ok: Callable[[list[str]], bool], timeout: float = 45
    ) -> list[str]:
        """Poll the pane until ``ok(lines)``; fail naming ``what`` and showing the pane."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if ok(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}; the pane:\n" + "\n".join(lines))
            time.sleep(0.2)

    def kill(self) -> None:
        self.remember()
        self("kill-server")
        procs = list(self.procs.values())
        _gone, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        _gone, alive = psutil.wait_procs(alive, timeout=5)
        if self.socket:
            try:
                os.unlink(self.socket)
            except OSError:
                pass
        assert not alive, f"left behind: {alive}"


def row(lines: list[str], job_id: str) -> str:
    """The pane line of ``job_id``'s row ("" when it is not shown)."""
    found = [ln for ln in lines if ln.startswith(job_id)]
    return found[0] if found else ""
