"""A state root nobody else controls (issue 14, item 1).

A state root any of whose folders (up to ``/``) another user can write without the sticky
bit, or owns, is refused with one line (exit 1) before anything is created in it, the way
ssh judges ``~/.ssh``; a sticky ``/tmp`` is fine above a root that is yours and writable by
nobody else. The state dir's mode is fixed through a descriptor opened without following
a symlink, so a dir swapped for a symlink after the checks is refused, not chmodded.

Real dirs with real modes and, where the machine allows ``useradd``, a real second user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Env, run_hook
from jobgate.state import workspace
from jobgate.state.errors import EXIT_FAILED, JobgateError

#: commands that read or write the state, each of which must refuse an unsafe root
COMMANDS: list[list[str]] = [
    ["status"],
    ["status", "--json"],
    ["run", "--", "true"],
    ["run", "--background", "--", "true"],
    ["config", "set", "maxJobs", "3"],
]


@pytest.fixture(scope="module")
def other_uid() -> Iterator[int]:
    """The uid of a second user made with ``useradd`` for this module (then removed)."""
    if os.geteuid() != 0:
        pytest.skip("making a second user (useradd) and giving it dirs needs root")
    useradd, userdel = shutil.which("useradd"), shutil.which("userdel")
    if useradd is None or userdel is None:
        pytest.skip("useradd/userdel are not available on this machine")
    name = f"jgt{os.getpid()}{os.urandom(2).hex()}"[:31]
    made = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/bin/false", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if made.returncode != 0:
        pytest.skip(f"useradd could not make a second user: {made.stderr.strip()}")
    try:
        yield pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run([userdel, name], capture_output=True, timeout=60)


def _refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """One line on stderr (no traceback), exit 1, naming ``words``; returns the line."""
    assert proc.returncode == EXIT_FAILED, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "refusing to use" in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _assert_every_command_refuses(jg: Env, home: Path, *words: str) -> None:
    jg.env["JOBGATE_HOME"] = str(home)
    for args in COMMANDS:
        _refused(jg.cli(*args), *words)
    hook = run_hook(jg, "stop")  # fails open: exit 0, the reason on stderr
    assert hook.returncode == 0 and hook.stdout == "", hook
    assert "refusing to use" in hook.stderr and "Traceback" not in hook.stderr, hook.stderr


def _tree(path: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(path)), p.lstat().st_mode, p.lstat().st_uid) for p in path.rglob("*")
    )


def test_a_state_root_inside_another_users_dir_is_refused_before_anything_is_made(
    jg: Env, tmp_path: Path, other_uid: int
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, other_uid, other_uid)
    _assert_every_command_refuses(jg, theirs / "state", f"owned by uid {other_uid}")
    assert list(theirs.iterdir()) == []  # no state root, no 0700 dir, no config made there


def test_a_shared_tmp_dir_owned_by_another_user_is_refused_as_a_state_root(
    jg: Env, other_uid: int
) -> None:
    """The issue's case: ``JOBGATE_HOME=/tmp/shared``, the dir another user's."""
    shared = Path(f"/tmp/jobgate-shared-{os.getpid()}-{os.urandom(3).hex()}")
    shared.mkdir(mode=0o755)
    try:
        os.chown(shared, other_uid, other_uid)
        _assert_every_command_refuses(jg, shared, "it is owned by uid", "not you")
        assert list(shared.iterdir()) == []
    finally:
        shutil.rmtree(shared)


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o757], ids=["g+w", "o+w", "o+w-only"])
def test_an_ancestor_writable_by_group_or_others_without_sticky_bit_is_refused(
    jg: Env, tmp_path: Path, mode: int
) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, mode)  # set after mkdir: the umask does not trim it
    (loose / "deeper").mkdir(mode=0o700)
    _assert_every_command_refuses(
        jg, loose / "deeper" / "state", str(loose), "without the sticky bit", f"{mode:04o}"
    )
    assert list((loose / "deeper").iterdir()) == []


def test_a_state_root_writable_by_others_is_refused_even_with_the_sticky_bit(
    jg: Env, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o1777)  # fine above a root, not as the root itself
    _assert_every_command_refuses(jg, home, "it is writable by group or others", "1777")
    assert list(home.iterdir()) == []


def test_a_symlink_another_user_owns_in_a_sticky_dir_is_refused(
    jg: Env, tmp_path: Path, other_uid: int
) -> None:
    """In a sticky dir the owner of an entry may replace it: their symlink could be
    pointed anywhere between jobgate's checks and its writes."""
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    link = sticky / "link"
    link.symlink_to(mine, target_is_directory=True)
    os.lchown(link, other_uid, other_uid)
    _assert_every_command_refuses(jg, link, "is a symlink owned by uid", str(other_uid))
    assert list(mine.iterdir()) == []


def test_a_state_root_of_yours_in_sticky_tmp_is_accepted(jg: Env) -> None:
    """``JOBGATE_HOME=/tmp/x``: ``/tmp`` is world-writable but sticky, ``x`` is yours."""
    tmp = Path("/tmp")
    if not tmp.lstat().st_mode & stat.S_ISVTX:
        pytest.skip("/tmp here is not sticky")
    home = tmp / f"jobgate-mine-{os.getpid()}-{os.urandom(3).hex()}"
    try:
        jg.env["JOBGATE_HOME"] = str(home)
        proc = jg.cli("run", "--", "true")
        assert proc.returncode == 0, proc.stderr
        assert jg.cli("status").returncode == 0
        assert home.stat().st_mode & 0o777 == 0o700
        (state_dir,) = home.iterdir()
        assert state_dir.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_folders_jobgate_makes_for_a_missing_state_root_are_private(tmp_path: Path) -> None:
    """Made 0700 each (the XDG rule), whatever the umask: a ``~/.local/state`` a umask of
    002 left group-writable would be refused as a loose ancestor the next time."""
    old = os.umask(0o002)
    try:
        root = tmp_path / "a" / "b" / "jobgate"
        workspace.ensure_state_root(str(root))
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", root):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    workspace.check_state_root(str(root))


def test_the_test_suites_own_state_roots_are_acceptable(tmp_path: Path) -> None:
    """Every test puts ``JOBGATE_HOME`` under pytest's ``tmp_path``: its folders pass."""
    workspace.check_state_root(str(tmp_path / "state-root"))
    workspace.ensure_state_root(str(tmp_path / "state-root"))
    workspace.check_state_root(str(tmp_path / "state-root"))


def test_a_state_dir_swapped_for_a_symlink_after_the_checks_is_not_chmodded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of the issue, made deterministic: the state dir exists (0755, so its
    mode is to be fixed) and, right after jobgate checked it, is exchanged for a symlink
    to a dir of the attacker's choice. The mode is fixed through a descriptor opened
    ``O_NOFOLLOW``: the swap is refused and the victim keeps its mode."""
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    state = root / "ws-0123456789abcdef"
    state.mkdir()
    os.chmod(state, 0o755)
    victim = tmp_path / "victim"
    victim.mkdir()
    os.chmod(victim, 0o755)
    real_check = workspace.check_private_dir

    def check_then_swap(path: str) -> bool:
        found = real_check(path)
        if path == str(state):
            os.rename(state, tmp_path / "moved-away")
            state.symlink_to(victim, target_is_directory=True)
        return found

    monkeypatch.setattr(workspace, "check_private_dir", check_then_swap)
    with pytest.raises(JobgateError, match="is a symlink") as caught:
        workspace.ensure_private_dir(str(state))
    assert caught.value.exit_code == EXIT_FAILED
    assert victim.stat().st_mode & 0o7777 == 0o755
    assert list(victim.iterdir()) == []
