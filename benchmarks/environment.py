"""The setting of a run: which jobgate is measured, facts about the machine, and the
environment the timed commands get."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

#: the Claude Code plugin in this checkout (its hooks.json is what Claude Code runs)
PLUGIN_ROOT = Path(__file__).resolve().parent.parent / "plugins" / "jobgate"


def jobgate_command() -> tuple[list[str], str]:
    """The installed jobgate: the console script beside the interpreter, else ``-m``."""
    script = Path(sys.executable).parent / ("jobgate.exe" if os.name == "nt" else "jobgate")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], f"console script {script}"
    return [sys.executable, "-m", "jobgate"], f"{sys.executable} -m jobgate"


def install_kind() -> str:
    """'editable' or 'regular' (from the installed distribution's direct_url.json)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("jobgate")
    except metadata.PackageNotFoundError:
        return "not installed (imported from sys.path)"
    raw = dist.read_text("direct_url.json")
    if raw:
        try:
            if json.loads(raw).get("dir_info", {}).get("editable"):
                return "editable"
        except ValueError:
            pass
    return "regular"


def fs_type(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (Linux), for fsync context."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def machine_facts(tmp: str, command_desc: str) -> dict[str, Any]:
    import psutil

    import jobgate

    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "platform": platform.platform(),
        "kernel": platform.release(),
        "jobgate": f"{jobgate.__version__} ({install_kind()} install, {jobgate.__file__})",
        "jobgateCommand": command_desc,
        "psutil": psutil.__version__,
        "tempDir": f"{tmp} ({fs_type(tmp)})",
        "loadAvgStart": load_avg(),
    }


def load_avg() -> str:
    """1/5/15-minute load averages: other work on the machine inflates every number."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def busy_problem(load_avg_start: str) -> str | None:
    """Why the numbers are not to be trusted if the machine was busy, else None."""
    try:
        busy = max(os.getloadavg()[0], float(load_avg_start.split()[0]))
    except (OSError, AttributeError, ValueError):
        busy = 0.0
    if busy > 0.5 * (os.cpu_count() or 1):
        return (
            f"the machine was busy (1-minute load {busy:.2f} on {os.cpu_count()} CPUs): "
            "absolute numbers are inflated and noisy; re-run on a quiet machine"
        )
    return None


def subprocess_env(home: str) -> dict[str, str]:
    env = dict(os.environ)
    env["JOBGATE_HOME"] = home
    # Users' installs have byte code caches (pip compiles them; an editable install writes
    # them on first use). With PYTHONDONTWRITEBYTECODE set, every edited module would be
    # recompiled on every run, which measures the compiler, not jobgate.
    for key in (
        "JOBGATE_SESSION_ID",
        "CLAUDE_ENV_FILE",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(key, None)
    # the plugin's hook script finds `jobgate` on PATH: make it this environment's
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["CLAUDE_PLUGIN_ROOT"] = str(PLUGIN_ROOT)
    return env


def plugin_stop_command() -> tuple[str | None, str | None]:
    """The Stop hook's command line from the checkout's plugin (``hooks.json``)."""
    path = PLUGIN_ROOT / "hooks" / "hooks.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        command = data["hooks"]["Stop"][0]["hooks"][0]["command"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return None, f"no Stop command in {path} ({exc.__class__.__name__})"
    return str(command), None
