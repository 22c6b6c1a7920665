"""The portable (psutil) backend, forced on Linux: identities off Linux tell a reused pid
from the job's process at the precision their clock has, and a renamed host from
another machine (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import SRC, can_force_pid_reuse, spawn_with_pid
from jobgate.proc import _portable


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_the_portable_backend_records_where_its_start_time_comes_from(
    portable: Any, sleeper: subprocess.Popen[bytes]
) -> None:
    ident = portable.capture(sleeper.pid)
    assert ident is not None
    assert ident["startSource"] == f"psutil-{sys.platform}"
    assert portable.probe(ident)[0] == portable.ALIVE


@pytest.mark.skipif(can_force_pid_reuse() is not None, reason=str(can_force_pid_reuse()))
def test_a_pid_reused_within_a_second_is_another_process_on_the_portable_backend(
    portable: Any,
) -> None:
    old_proc = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    old = portable.capture(old_proc.pid)
    old_proc.kill()
    old_proc.wait()
    assert old is not None
    time.sleep(0.05)  # past one clock tick (10 ms), well within the old 1 s tolerance
    stranger = spawn_with_pid(old["pid"], ["sleep", "300"])
    try:
        now = portable.capture(stranger.pid)
        assert now is not None
        assert abs(now["startTime"] - old["startTime"]) < 1.0  # the old rule: "same"
        verdict, evidence = portable.probe(old)
        assert verdict == portable.REUSED, evidence
        assert evidence == f"pid {old['pid']} now belongs to another process"
        assert portable.probe(now)[0] == portable.ALIVE
    finally:
        stranger.kill()
        stranger.wait()


def test_identities_of_either_linux_backend_read_the_same_on_the_other(
    portable: Any, sleeper: subprocess.Popen[bytes]
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the /proc backend exists on Linux only")
    from jobgate.proc import _linux

    ported = portable.capture(sleeper.pid)
    previous = portable.use_backend(_linux)
    try:
        native = portable.capture(sleeper.pid)
        assert native is not None and ported is not None
        assert native["startTicks"] == ported["startTicks"]
        assert portable.probe(ported)[0] == portable.ALIVE
    finally:
        portable.use_backend(previous)
    assert portable.probe(native)[0] == portable.ALIVE


def test_a_renamed_host_is_still_this_machine_on_the_portable_backend(
    portable: Any, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = portable.capture(sleeper.pid)
    assert ident is not None
    if "machineId" not in ident and "bootId" not in ident:
        pytest.skip("no machine id and no boot id readable here")
    monkeypatch.setattr(portable, "_host_cache", ["MacBook.lan"])  # was MacBook.local
    assert portable.host_name() == "MacBook.lan" != ident["host"]
    verdict, evidence = portable.probe(ident)
    assert verdict == portable.ALIVE, evidence


def test_a_rebooted_machine_is_not_running_the_jobs_of_its_last_boot(
    portable: Any, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = portable.capture(sleeper.pid)
    assert ident is not None
    if "bootId" not in ident or "machineId" not in ident:
        pytest.skip("needs a boot id and a machine id")
    monkeypatch.setattr(portable, "_host_cache", ["renamed-since"])
    before = dict(ident, bootId="00000000-0000-0000-0000-000000000000")
    assert portable.probe(before)[0] == portable.REBOOTED


def test_another_machine_with_this_hosts_name_is_still_another_machine(
    portable: Any, sleeper: subprocess.Popen[bytes]
) -> None:
    ident = portable.capture(sleeper.pid)
    assert ident is not None
    if "machineId" not in ident:
        pytest.skip("no machine id readable here")
    other = dict(ident, machineId="f" * 32, bootId="11111111-2222-3333-4444-555555555555")
    verdict, evidence = portable.probe(other)
    assert verdict == portable.FOREIGN
    assert "another machine" in evidence


def test_a_job_started_on_the_portable_backend_stays_running_after_a_host_rename(
    tmp_path: Any, sleeper: subprocess.Popen[bytes]
) -> None:
    """Through a real reader process: the identity a portable reader captured is still
    alive for a portable reader that sees another host name (the rename is what that
    reader's ``host_name`` answers)."""
    code = (
        "import json, sys\n"
        "from jobgate.proc import liveness\n"
        "assert liveness.is_portable()\n"
        "if sys.argv[1] == 'capture':\n"
        "    print(json.dumps(liveness.capture(int(sys.argv[2]))))\n"
        "else:\n"
        "    liveness._host_cache[:] = ['renamed.lan']\n"
        "    print(liveness.probe(json.loads(sys.argv[2]))[0])\n"
    )
    env = dict(os.environ, JOBGATE_PLATFORM="portable", PYTHONPATH=SRC)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    ident = run("capture", str(sleeper.pid))
    assert '"startSource": "psutil-' in ident
    if '"machineId"' not in ident and '"bootId"' not in ident:
        pytest.skip("no machine id and no boot id readable here")
    assert run("probe", ident) == "alive"


# ------------------------------------------------------------------- pure parsing


def test_ioreg_output_gives_the_platform_uuid() -> None:
    text = (
        "+-o J314sAP  <class IOPlatformExpertDevice, id 0x100000222, registered>\n"
        "    {\n"
        '      "IOPlatformSerialNumber" = "C02XXXXXXX"\n'
        '      "IOPlatformUUID" = "564DA1B2-0C3D-4E5F-8A9B-0123456789AB"\n'
        '      "IOPolledInterface" = "AppleSEPHibernateHandler is not serializable"\n'
        "    }\n"
    )
    assert _portable.parse_ioreg_platform_uuid(text) == "564DA1B2-0C3D-4E5F-8A9B-0123456789AB"


@pytest.mark.parametrize("text", [None, "", '"IOPlatformUUID" = ""', '"IOPlatformUUIDX" = "a"'])
def test_ioreg_output_without_a_platform_uuid_gives_none(text: str | None) -> None:
    assert _portable.parse_ioreg_platform_uuid(text) is None


def test_sysctl_output_gives_the_boot_session_uuid() -> None:
    out = "8D3C61F0-2F59-4B5E-9A57-0B1C2D3E4F50\n"
    assert _portable.parse_sysctl_value(out) == "8D3C61F0-2F59-4B5E-9A57-0B1C2D3E4F50"


@pytest.mark.parametrize("text", [None, "", "\n", "sysctl: unknown oid 'kern.x'\n", "a\nb\n"])
def test_sysctl_output_that_is_not_one_value_gives_none(text: str | None) -> None:
    assert _portable.parse_sysctl_value(text) is None
