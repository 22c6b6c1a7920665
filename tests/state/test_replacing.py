"""Replacing a file another process holds open (Windows): retried briefly, then one clear
error naming the file, and nothing changed. The Windows errors are injected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobgate.state import fileio, replacing


def _busy(winerror: int = 32) -> OSError:
    exc = PermissionError(13, "The process cannot access the file")
    exc.winerror = winerror  # type: ignore[attr-defined]
    return exc


class Flaky:
    """A rename that reports the file busy ``times`` times, then really renames."""

    def __init__(self, times: int, exc: OSError | None = None) -> None:
        self.times = times
        self.calls = 0
        self.exc = exc

    def __call__(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise self.exc or _busy()
        os.replace(src, dst)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "new", tmp_path / "state.json"
    src.write_text("new")
    dst.write_text("old")
    return src, dst


@pytest.mark.parametrize("winerror", sorted(replacing.BUSY_WINERRORS))
def test_a_file_held_briefly_is_replaced_after_a_retry(tmp_path: Path, winerror: int) -> None:
    src, dst = _files(tmp_path)
    slept: list[float] = []
    flaky = Flaky(2, _busy(winerror))
    replacing.replace(src, dst, rename=flaky, sleep=slept.append)
    assert dst.read_text() == "new" and not src.exists()
    assert flaky.calls == 3
    assert slept == list(replacing.RETRY_DELAYS[:2])


def test_a_file_held_throughout_is_a_clear_error_and_nothing_changes(tmp_path: Path) -> None:
    src, dst = _files(tmp_path)
    slept: list[float] = []
    flaky = Flaky(1000)
    with pytest.raises(replacing.ReplaceBusy) as caught:
        replacing.replace(src, dst, rename=flaky, sleep=slept.append)
    assert flaky.calls == len(replacing.RETRY_DELAYS) + 1
    assert sum(slept) == pytest.approx(sum(replacing.RETRY_DELAYS))
    assert 0.5 <= sum(slept) <= 2.0  # "briefly": about a second
    assert caught.value.filename == str(dst)
    assert "another process has the file open" in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    assert dst.read_text() == "old" and src.read_text() == "new"


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    src, dst = _files(tmp_path)
    slept: list[float] = []
    flaky = Flaky(1, PermissionError(13, "Permission denied"))  # POSIX: no winerror
    with pytest.raises(PermissionError) as caught:
        replacing.replace(src, dst, rename=flaky, sleep=slept.append)
    assert not isinstance(caught.value, replacing.ReplaceBusy)
    assert flaky.calls == 1 and slept == []


def test_atomic_write_over_a_held_file_leaves_it_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "active.json"
    target.write_bytes(b'{"old": true}')
    flaky = Flaky(1000)
    monkeypatch.setattr(replacing.os, "replace", flaky)
    monkeypatch.setattr(replacing.time, "sleep", lambda s: None)
    with pytest.raises(OSError) as caught:
        fileio.atomic_write(str(target), b'{"new": true}')
    assert caught.value.filename == str(target)
    assert target.read_bytes() == b'{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["active.json"]


def test_atomic_write_over_a_briefly_held_file_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "active.json"
    target.write_bytes(b"old")
    real = os.replace
    calls: list[int] = []

    def flaky(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise _busy()
        real(src, dst)

    monkeypatch.setattr(replacing.os, "replace", flaky)
    monkeypatch.setattr(replacing.time, "sleep", lambda s: None)
    fileio.atomic_write(str(target), b"new")
    assert target.read_bytes() == b"new" and len(calls) == 3
