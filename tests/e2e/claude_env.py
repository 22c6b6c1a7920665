"""Running jobgate under the real Claude Code client: the world one test runs it in.

The client is the ``@anthropic-ai/claude-code`` version pinned in ``package.json`` here,
installed into ``tests/e2e/node_modules`` by ``.ci/run`` (locally: the same command,
:data:`NPM_CI`). Each test gets a :class:`ClaudeEnv`: a temp ``HOME`` (XDG dirs inside)
with this repository's plugin installed from its marketplace, a temp git workspace, its
own ``JOBGATE_HOME``, the venv's ``jobgate`` first on ``PATH``, and a scripted Messages
API (:mod:`scripted_api`) that the client talks to instead of the network.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import reap_marked
from e2e.scripted_api import ScriptedAPI, Turn

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parent.parent
CLAUDE = E2E_DIR / "node_modules" / ".bin" / "claude"
PINNED: str = json.loads((E2E_DIR / "package.json").read_text())["devDependencies"][
    "@anthropic-ai/claude-code"
]
NPM_CI = "npm ci --prefix tests/e2e --no-audit --no-fund"
#: the venv's jobgate (the one the hooks must run), beside the interpreter running pytest
VENV_BIN = Path(sys.executable).parent

#: the quiet settings of shared/reference/claude-code.md: nothing leaves the machine
QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}


def _version(binary: Path) -> str:
    """What ``binary --version`` says (``2.1.197``), or why it said nothing."""
    try:
        out = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **QUIET},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not run ({exc})"
    words = out.stdout.split()
    return words[0] if out.returncode == 0 and words else f"exit {out.returncode}"


@functools.lru_cache(maxsize=1)
def find_client() -> tuple[Path | None, str]:
    """``(the pinned client, "")`` or ``(None, why the e2e tests skip)``.

    The package's ``bin/claude.exe`` is a stub until its postinstall links the platform's
    native binary over it; should npm ever skip that script, the native package's own
    binary (same version, beside it in node_modules) is used instead.
    """
    if not CLAUDE.exists():
        if shutil.which("npm") is None or shutil.which("node") is None:
            return None, (
                "node/npm are not installed, so the pinned Claude Code client "
                f"(@anthropic-ai/claude-code {PINNED}) cannot be installed"
            )
        return None, f"the pinned Claude Code client is not installed; run: {NPM_CI}"
    natives = sorted((E2E_DIR / "node_modules" / "@anthropic-ai").glob("claude-code-*/claude"))
    seen = []
    for binary in [CLAUDE, *natives]:
        version = _version(binary)
        if version == PINNED:
            return binary, ""
        seen.append(f"{binary.relative_to(E2E_DIR)}: {version}")
    return None, f"no runnable Claude Code {PINNED} in tests/e2e ({'; '.join(seen)}); run: {NPM_CI}"


class ClaudeEnv:
    """One test's Claude Code world: home, workspace, jobgate state, scripted API."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.home = tmp_path / "home"
        self.workspace = tmp_path / "ws"
        self.jobgate_home = tmp_path / "jobgate-home"
        for d in (self.home, self.workspace):
            d.mkdir()
        self.servers: list[ScriptedAPI] = []
        client, problem = find_client()
        assert client is not None, problem
        self.claude = client
        self.env = {
            "PATH": os.pathsep.join(
                [str(VENV_BIN), str(client.parent), os.environ.get("PATH", os.defpath)]
            ),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "TMPDIR": str(tmp_path),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "SHELL": shutil.which("bash") or "/bin/sh",
            "ANTHROPIC_API_KEY": "dummy",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",  # set by serve()
            "JOBGATE_HOME": str(self.jobgate_home),
            "GIT_CONFIG_NOSYSTEM": "1",
            **QUIET,
        }
        git = [
            "git",
            "-C",
            str(self.workspace),
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@localhost",
        ]
        (self.workspace / "README").write_text("an e2e workspace\n")
        for args in (["init", "-q"], ["add", "README"], ["commit", "-q", "-m", "init"]):
            subprocess.run([*git, *args], check=True, env=self.env, capture_output=True)

    # -- set-up -------------------------------------------------------------------------
    def install_plugin(self) -> None:
        """Add this repository as a marketplace and install the jobgate plugin from it,
        as the README tells a user to (neither needs a login)."""
        for args in (
            ["plugin", "marketplace", "add", str(REPO)],
            ["plugin", "install", "jobgate@jobgate"],
        ):
            proc = self.run_claude(*args, timeout=60)
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)

    def serve(self, script: list[Turn], **kw: Any) -> ScriptedAPI:
        """Start a scripted API for the next client runs (stopped at teardown)."""
        api = ScriptedAPI(script, **kw).start()
        self.servers.append(api)
        self.env["ANTHROPIC_BASE_URL"] = api.base_url
        return api

    # -- running things -------------------------------------------------------------------
    def jobgate(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(VENV_BIN / "jobgate"), *args],
            cwd=self.workspace,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of the workspace (``status --all --json``)."""
        jobs: list[dict[str, Any]] = json.loads(self.jobgate("status", "--all", "--json").stdout)[
            "jobs"
        ]
        return jobs

    def run_claude(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """Run the client in the workspace in its own process group; on timeout the group
        is killed and the test fails."""
        proc = subprocess.Popen(
            [str(self.claude), *args],
            cwd=self.workspace,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            out, err = proc.communicate()
            raise AssertionError(
                f"claude {' '.join(args)} ran past {timeout} s\nstdout: {out[-2000:]}\n"
                f"stderr: {err[-2000:]}"
            ) from None
        finally:
            _kill_group(proc.pid)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def print_run(
        self, prompt: str, *extra: str, timeout: float = 90
    ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
        """``claude -p PROMPT`` with Bash allowed and ``stream-json`` output including the
        hook events; returns the process and its parsed events."""
        proc = self.run_claude(
            "-p",
            prompt,
            "--allowedTools",
            "Bash",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-hook-events",
            *extra,
            timeout=timeout,
        )
        events = []
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass
        assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc, events

    def close(self) -> None:
        for api in self.servers:
            api.close()
        reap_marked(str(self.jobgate_home))


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def hook_responses(events: list[dict[str, Any]], hook_event: str) -> list[dict[str, Any]]:
    """The ``system``/``hook_response`` events of ``hook_event`` (``Stop``, ...)."""
    return [
        e
        for e in events
        if e.get("type") == "system"
        and e.get("subtype") == "hook_response"
        and e.get("hook_event") == hook_event
    ]


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)
