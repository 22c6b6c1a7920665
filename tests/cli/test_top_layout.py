"""The live view's lines (``jobgate top``), without a terminal: the queue order, the order
of the rows, every line within the width (wide characters, escapes, cuts), the height
kept, record text escaped, and what counts as a change for the plain output."""

from __future__ import annotations

from typing import Any

import pytest

from jobgate.cli import render
from jobgate.cli.top_layout import (
    RECENT,
    arrange,
    as_json,
    last_line,
    queue_positions,
    screen,
    signature,
)
from jobgate.state import model

NOW = 1_800_000_000.0


def job(job_id: str, status: str = model.RUNNING, at: float = 0.0, **fields: Any) -> model.Job:
    out = model.new_job(
        job_id=job_id, command=["x"], cwd="/", log_file=f"/nonexistent/{job_id}.log", now=NOW + at
    )
    out["status"] = status
    if status != model.QUEUED:
        out["startedAt"] = model.now_iso(NOW + at)
    if status in model.FINISHED:
        out["completedAt"] = model.now_iso(NOW + at + 1)
    out.update(fields)
    return out


def texts(jobs: list[model.Job], width: int = 100, **kw: Any) -> list[str]:
    kw.setdefault("last_lines", {})
    lines = screen(jobs, kw.pop("last_lines"), root="/ws", clock="12:00:00", now=NOW + 60,
                   width=width, **kw)  # fmt: skip
    return [line.text for line in lines]


def row_of(lines: list[str], job_id: str) -> str:
    (found,) = [ln for ln in lines if ln.startswith(job_id)]
    return found


# -- the queue -----------------------------------------------------------------------------
def test_queued_jobs_start_in_ascending_rank_then_by_creation_per_group() -> None:
    jobs = [
        job("q-late", model.QUEUED, at=5, queueRank=1),
        job("q-early", model.QUEUED, at=1, queueRank=1),
        job("q-first", model.QUEUED, at=9, queueRank=0),
        job("q-unranked", model.QUEUED, at=0),
        job("g-b", model.QUEUED, at=2, group="gpu", queueRank=7),
        job("g-a", model.QUEUED, at=3, group="gpu", queueRank=3),
        job("running", model.RUNNING, queueRank=-5),
    ]
    assert queue_positions(jobs) == {
        "q-first": 1,
        "q-early": 2,
        "q-late": 3,
        "q-unranked": 4,
        "g-a": 1,
        "g-b": 2,
    }


@pytest.mark.parametrize("rank", [True, "1", float("nan"), float("inf"), None, [1]])
def test_a_forged_queue_rank_counts_as_none(rank: object) -> None:
    jobs = [job("forged", model.QUEUED, at=0, queueRank=rank), job("real", model.QUEUED, at=5,
            queueRank=100)]  # fmt: skip
    assert queue_positions(jobs) == {"real": 1, "forged": 2}


def test_rows_go_running_by_start_then_queued_by_group_and_place_then_newest_finished() -> None:
    jobs = [
        job("r-new", at=20),
        job("r-old", at=10),
        job("q-gpu", model.QUEUED, group="gpu", queueRank=0),
        job("q-2", model.QUEUED, queueRank=2),
        job("q-1", model.QUEUED, queueRank=1),
        *[job(f"done-{i}", model.COMPLETED, at=i) for i in range(RECENT + 3)],
    ]
    running, queued, finished = arrange(jobs, queue_positions(jobs))
    assert [j["id"] for j in running] == ["r-old", "r-new"]
    assert [j["id"] for j in queued] == ["q-1", "q-2", "q-gpu"]
    assert [j["id"] for j in finished] == [f"done-{i}" for i in range(RECENT + 2, 2, -1)]
    lines = texts(jobs, 120)
    order = [ln.split()[0] for ln in lines if ln.startswith(("r-", "q-", "done-"))]
    assert order == [j["id"] for j in running + queued + finished]
    assert "  #1  " in row_of(lines, "q-1") and "  #2  " in row_of(lines, "q-2")
    assert "gpu#1" in row_of(lines, "q-gpu")
    assert lines[-1].startswith("2 running · 3 queued (default 2, gpu 1) · 5 recently finished")


# -- widths and cuts -----------------------------------------------------------------------
NASTY = [
    job("wide", name="名前がとても長いジョブ名前がとても長いジョブ", at=1),
    job("esc", name="\x1b[2J\x1b]0;pwned\x07", at=2),
    job("bidi", name="abc\u202eevil", at=3),
    job("q", model.QUEUED, group="a-very-long-group-name-indeed", queueRank=1),
    job("lost", model.FAILED, phase=model.PHASE_LOST, errorMessage="lost: worker pid 9 gone"),
]
TAILS = {
    "wide": "出力" * 100,
    "esc": "\x1b[31mred\x1b[0m\r\n\x9b2J" + "x" * 300,
    "bidi": "\u202e" * 10,
}


@pytest.mark.parametrize("width", [1, 2, 5, 17, 40, 59, 60, 61, 80, 133, 250])
@pytest.mark.parametrize("height", [None, 1, 2, 3, 4, 7, 40])
def test_every_line_fits_the_width_and_the_height(width: int, height: int | None) -> None:
    lines = screen(NASTY, TAILS, root="/ws/" + "d" * 200, clock="12:00:00", now=NOW, width=width,
                   height=height, hint="q: quit", note="a warning " * 30)  # fmt: skip
    for line in lines:
        assert render.columns(line.text) <= width, (width, line.text)
        assert line.text.isprintable(), line.text
    if height is not None:
        assert 1 <= len(lines) <= height
    if height is None or height >= 12:  # everything fits: the footer and each job's row
        assert lines[-1].style == "footer"
        assert (
            len([ln for ln in lines if ln.style not in ("title", "header", "note", "footer")]) == 5
        )


def test_the_last_log_line_takes_the_rest_of_the_width_and_is_cut_with_an_ellipsis() -> None:
    for width in (60, 100, 160):
        line = row_of(texts([job("run-a", name="build")], width, last_lines={"run-a": "y" * 500}),
                      "run-a")  # fmt: skip
        assert len(line) == width and line.endswith("y…"), line
    short = row_of(texts([job("run-a", name="build")], 100, last_lines={"run-a": "ok"}), "run-a")
    assert short.endswith("build  ok")


def test_record_text_is_escaped_never_sent_to_the_terminal() -> None:
    lines = texts(NASTY, 400, last_lines=TAILS)
    esc = row_of(lines, "esc")
    assert "\\x1b[2J\\x1b]0;pwned\\x07" in esc
    assert "\\x1b[31mred\\x1b[0m\\r\\n\\x9b2J" in esc  # \r inside a line: escaped, not redrawn
    assert "abc\\u202eevil" in row_of(lines, "bidi")
    assert all("\x1b" not in ln and "\u202e" not in ln for ln in lines)


def test_a_lost_job_shows_as_failed_lost_with_why() -> None:
    lines = texts([job("run-x", model.FAILED, phase=model.PHASE_LOST,
                       errorMessage="lost: worker pid 41 is gone")], 120)  # fmt: skip
    row = row_of(lines, "run-x")
    assert "failed (lost)" in row and row.endswith("lost: worker pid 41 is gone")
    assert "running" not in row
    assert lines[-1].startswith("0 running · 0 queued · 1 recently finished (1 lost)")


def test_rows_that_do_not_fit_the_height_are_counted() -> None:
    jobs = [job(f"run-{i:02d}", at=i) for i in range(30)]
    lines = texts(jobs, 80, height=10)
    assert len(lines) == 10
    assert lines[-2] == "… 24 more job(s) not shown (a taller terminal shows them)"
    assert [ln.split()[0] for ln in lines[2:8]] == [f"run-{i:02d}" for i in range(6)]


def test_no_jobs_says_how_to_start_one() -> None:
    lines = texts([], 80)
    assert any("no running or queued jobs" in ln for ln in lines)
    assert lines[-1] == "0 running · 0 queued"


def test_the_hint_goes_right_of_the_counts_when_it_fits() -> None:
    assert texts([], 60, hint="q: quit")[-1].endswith(" q: quit")
    assert len(texts([], 60, hint="q: quit")[-1]) == 60
    assert texts([], 22, hint="q: quit")[-1] == "0 running · 0 queued"


# -- last lines, changes, JSON -------------------------------------------------------------
def test_the_last_line_is_the_commands_own_and_a_redrawn_one_as_shown() -> None:
    log = (
        b"first\n50%\r75%\r100%\r\n[2026-12-02T04:23:40.303Z] jobgate: command exited with code 0\n"
    )
    assert last_line(log, False) == "100%"
    assert last_line(b"[2026-12-02T04:23:40.303Z] jobgate: running, pid 3\n\n", False) == (
        "jobgate: running, pid 3"
    )
    assert last_line(b"rest-of-a-long-line", True) == "rest-of-a-long-line"
    assert last_line(b"end of a line\nwhole\n", True) == "whole"
    assert last_line(b"\n \n", False) == ""


def test_only_what_the_jobs_do_counts_as_a_change_not_the_clock() -> None:
    jobs = [job("run-a"), job("q-a", model.QUEUED, queueRank=1)]
    base = signature(jobs, {"run-a": "one"})
    assert signature([dict(j) for j in jobs], {"run-a": "one"}) == base
    assert signature(jobs, {"run-a": "two"}) != base
    assert signature([jobs[0], {**jobs[1], "queueRank": 0}, job("q-b", model.QUEUED)], {}) != base
    finished = {**jobs[0], "status": model.COMPLETED, "completedAt": model.now_iso(NOW + 5)}
    assert signature([finished, jobs[1]], {"run-a": "one"}) != base


def test_the_json_twin_has_the_queue_place_elapsed_and_last_line() -> None:
    jobs = [job("run-a", at=0), job("q-a", model.QUEUED, at=30, group="gpu", queueRank=4)]
    obj = as_json(jobs, {"run-a": "\x1b[1mhi"}, root="/ws", now=NOW + 90)
    assert obj["counts"] == {"running": 1, "queued": 1, "finished": 0}
    run, queued = obj["jobs"]
    assert run["id"] == "run-a" and run["elapsedSeconds"] == 90 and run["lastLine"] == "\x1b[1mhi"
    assert run["queuePosition"] is None and run["group"] == "default"
    assert (
        queued["queuePosition"] == 1 and queued["group"] == "gpu" and queued["elapsed"] == "1m00s"
    )
