"""Start-time comparison: at the granularity of the clock the start time came from."""

from __future__ import annotations

import pytest

from jobgate.proc import starttime

T = 1795541800.123456


@pytest.mark.parametrize(
    ("source", "apart", "same"),
    [
        ("psutil-darwin", 0.0, True),
        ("psutil-darwin", 0.000001, True),  # the same timeval, stored rounded
        ("psutil-darwin", 0.00001, False),  # 10 µs apart: another process
        ("psutil-darwin", 0.3, False),  # a pid reused within a second
        ("psutil-win32", 0.0000005, True),
        ("psutil-win32", 0.00005, False),
        ("psutil-linux", 0.01, True),  # one clock tick
        ("psutil-linux", 0.05, False),
    ],
)
def test_start_times_of_one_source_match_within_its_clocks_granularity(
    source: str, apart: float, same: bool
) -> None:
    rec = {"pid": 7, "startTime": round(T, 6), "startSource": source}
    now = {"pid": 7, "startTime": T + apart, "startSource": source}
    assert starttime.same_start(rec, now) is same


def test_start_times_without_a_source_keep_the_old_one_second_rule() -> None:
    rec = {"pid": 7, "startTime": T}
    assert starttime.same_start(rec, {"startTime": T + 0.9, "startSource": "psutil-darwin"})
    assert not starttime.same_start(rec, {"startTime": T + 1.5, "startSource": "psutil-darwin"})


def test_start_times_of_different_sources_keep_the_old_one_second_rule() -> None:
    rec = {"startTime": T, "startSource": "psutil-darwin"}
    assert starttime.same_start(rec, {"startTime": T + 0.5, "startSource": "psutil-win32"})
    assert starttime.tolerance("psutil-darwin", "psutil-win32") == starttime.LEGACY_TOLERANCE
    assert starttime.tolerance("made-up", "made-up") == starttime.LEGACY_TOLERANCE


def test_clock_ticks_decide_exactly_when_both_sides_have_them() -> None:
    rec = {"startTicks": 500, "startTime": T}
    assert starttime.same_start(rec, {"startTicks": 500, "startTime": T + 0.9})
    assert not starttime.same_start(rec, {"startTicks": 501, "startTime": T})


@pytest.mark.parametrize("value", [None, "1.0", True])
def test_no_usable_recorded_start_time_proves_nothing(value: object) -> None:
    assert starttime.same_start({"startTime": value}, {"startTime": T}) is None
