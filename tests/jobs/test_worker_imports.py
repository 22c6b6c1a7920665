"""A background job's worker starts light: the modules that cost it most to import
(measured: ~20 ms of CPU a job between them) stay out of its way. It is the one
interpreter every background job starts besides the CLI itself, so on a loaded machine
its imports are throughput (docs/performance.md, issue 15)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from conftest import Env, native_only

#: imported by the worker only through what it needs not: enum (via signal and re), re
#: (via json and shlex), json, threading (a watchdog with no limit to watch), subprocess
#: (the background worker forks), warnings (os.execvpe's PATH search), site (-S: the
#: launcher hands the worker its module path)
HEAVY = ("enum", "re", "json", "signal", "threading", "subprocess", "warnings", "shlex", "site")


@native_only("the Linux worker path, which imports no psutil (psutil imports re and enum)")
def test_a_background_worker_imports_none_of_the_heavy_modules(jg: Env) -> None:
    # -X importtime's report goes to stderr: the worker's (and its held command's, before
    # exec) is the job's log; the CLI's own stays on the CLI's stderr
    brief = jg.cli(
        "run", "--background", "--json", "--", "true", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert brief.returncode == 0, brief.stderr
    job_id = jg.cli_json("status", "--all")["jobs"][0]["id"]
    job = jg.wait_for(job_id, lambda j: j["status"] == "completed")
    log = Path(job["logFile"]).read_text()
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", log, re.M))
    assert "jobgate.jobs.worker" in imported  # the report is there: it can tell
    assert sorted(imported & set(HEAVY)) == []


def test_modules_in_the_jobs_folder_do_not_stand_in_for_the_workers_own(
    jg: Env, tmp_path: Path
) -> None:
    # `python -c` puts the working directory (the job's) first on the module path: an
    # fcntl.py there would have been the worker's lock module
    for name in ("fcntl", "math", "select", "zlib"):
        (jg.workspace / f"{name}.py").write_text("raise SystemExit('shadowed')\n")
    elsewhere = tmp_path / "elsewhere"  # the CLI itself runs as python -m: not from there
    elsewhere.mkdir()
    ws = str(jg.workspace)
    out = jg.cli("--cwd", ws, "run", "-b", "--json", "--", "sh", "-c", "echo ran", cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    job_id = json.loads(out.stdout)["id"]
    waited = jg.cli("--cwd", ws, "wait", job_id, "--timeout", "60", cwd=elsewhere)
    log = jg.cli("--cwd", ws, "log", job_id, cwd=elsewhere).stdout
    assert waited.returncode == 0, log  # completed
    assert "ran" in log.splitlines()


def test_the_workers_module_path_is_absolute_and_leads_with_this_jobgate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobgate.jobs import workers

    monkeypatch.setattr(sys, "path", ["/the/cli/script/folder", "", "rel/src", *sys.path[1:]])
    entries = workers.worker_path().split("\n")
    assert entries[0] == workers._package_parent()
    assert os.path.abspath("rel/src") in entries
    assert "/the/cli/script/folder" not in entries and "" not in entries
    assert all(os.path.isabs(e) for e in entries) and len(entries) == len(set(entries))
