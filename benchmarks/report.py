"""The results, as a plain-text table, as Markdown (the Results block of
docs/performance.md) or as one JSON object."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from benchmarks.timing import Row


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "tx/s":
        return f"{value:,.0f}"
    if unit == "us":
        return f"{value:.2f}"
    return f"{value:.1f}"


def table(rows: list[Row]) -> str:
    head = ["measurement", "median", "p90", "unit", "x base", "target", "ok"]
    lines = [head]
    for r in rows:
        status = (
            "n/a"
            if r.ok is None and r.median is None
            else ("-" if r.ok is None else ("PASS" if r.ok else "FAIL"))
        )
        lines.append(
            [
                r.name,
                fmt(r.median, r.unit),
                fmt(r.p90, r.unit),
                r.unit,
                f"{r.ratio:.2f}" if r.ratio is not None else "",
                r.target,
                status,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            c.ljust(widths[i]) if i in (0, 3, 5, 6) else c.rjust(widths[i])
            for i, c in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"  {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(out) + "\n\nnotes:\n" + "\n".join(notes)


def markdown(
    facts: dict[str, Any],
    rows: list[Row],
    problems: dict[str, str],
    imports: dict[str, dict[str, Any]],
) -> str:
    """The results as Markdown, for the block between the markers in docs/performance.md."""
    out = ["Machine and run:", ""]
    out += [f"- {key}: `{value}`" for key, value in facts.items()]
    out += ["", "| measurement | median | p90 | unit | × baseline | target | result |"]
    out.append("| --- | ---: | ---: | --- | ---: | --- | --- |")
    for r in rows:
        if r.median is None:
            result = "not available"
        else:
            result = "—" if r.ok is None else ("**pass**" if r.ok else "**FAIL**")
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        out.append(
            f"| {r.name} | {fmt(r.median, r.unit)} | {fmt(r.p90, r.unit)} | {r.unit} "
            f"| {ratio} | {r.target} | {result} |"
        )
    out += ["", "Notes:", ""] + [f"- {r.name}: {r.note}" for r in rows if r.note]
    if problems:
        out += ["", "Problems:", ""] + [f"- {k}: {v}" for k, v in problems.items()]
    for label, info in imports.items():
        if not info:
            continue
        out += [
            "",
            f"Import time of `{label}` (`{info['command']}`), medians of 5 runs; "
            f"total self time of {info['modules']} modules: "
            f"{info['totalSelfUs'] / 1000:.1f} ms",
            "",
            "```",
            "top-level imports, cumulative:",
        ]
        out += [f"  {us / 1000:6.2f} ms  {mod}" for mod, us in info["topLevelCumulativeUs"]]
        out.append("modules by self time:")
        out += [f"  {us / 1000:6.2f} ms  {mod}" for mod, us in info["topSelfUs"]]
        out.append("```")
    return "\n".join(out)


def json_report(
    facts: dict[str, Any],
    rows: list[Row],
    problems: dict[str, str],
    imports: dict[str, dict[str, Any]],
) -> str:
    """The results as one JSON object: machine facts, rows (with samples), problems."""
    out = {
        "machine": facts,
        "results": [asdict(r) for r in rows],
        "problems": problems,
        "imports": imports,
    }
    return json.dumps(out, indent=2)


def print_text(
    facts: dict[str, Any],
    rows: list[Row],
    problems: dict[str, str],
    imports: dict[str, dict[str, Any]],
) -> None:
    """Print the results for a terminal: machine facts, the table, imports, problems."""
    print("machine:")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    print()
    print(table(rows))
    for label, info in imports.items():
        if not info:
            continue
        print(f"\nimport time of {label} ({info['command']}), medians of 5 runs:")
        print(
            f"  total self time of {info['modules']} modules: {info['totalSelfUs'] / 1000:.1f} ms"
        )
        print("  top-level imports by cumulative time:")
        for mod, us in info["topLevelCumulativeUs"]:
            print(f"    {us / 1000:7.2f} ms  {mod}")
        print("  modules by self time:")
        for mod, us in info["topSelfUs"]:
            print(f"    {us / 1000:7.2f} ms  {mod}")
    if problems:
        print("\nproblems:")
        for key, value in problems.items():
            print(f"  {key}: {value}")


# -- --scaling: the scaling and concurrency tables ----------------------------------------
def grid(head: list[str], lines: list[list[str]], md: bool, left: int = 1) -> str:
    """A table as Markdown or as aligned plain text; the first ``left`` columns are
    left-aligned, the others right-aligned."""
    if md:
        out = ["| " + " | ".join(head) + " |"]
        out.append(
            "| " + " | ".join("---" if i < left else "---:" for i in range(len(head))) + " |"
        )
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    rows = [head, *lines]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out = []
    for n, r in enumerate(rows):
        cells = [c.ljust(widths[i]) if i < left else c.rjust(widths[i]) for i, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _times(ratio: float | None, md: bool) -> str:
    return "" if ratio is None else f"{ratio:.2f}{'×' if md else 'x'}"


def scaling_tables(
    facts: dict[str, Any],
    sizes: list[Any],
    callers: list[Any],
    problems: dict[str, str],
    md: bool,
) -> str:
    """The ``--scaling`` results (:class:`benchmarks.scaling.SizeResult` and
    :class:`benchmarks.concurrent_runs.CallersResult` lists) as Markdown or text."""
    from benchmarks.scaling import COLUMNS, RSS_RUNS

    out = ["Machine and run:", ""] if md else ["machine:"]
    out += [f"- {k}: `{v}`" if md else f"  {k}: {v}" for k, v in facts.items()]
    if sizes:
        rounds = sorted({s.rounds for s in sizes})
        out += [
            "",
            "Scaling with the jobs in state: whole-process wall time, median of "
            f"{'/'.join(map(str, rounds))} interleaved rounds per size, as a multiple of the "
            "bare interpreter (`python -I -S -c pass`) timed in the same rounds "
            "(median ms in brackets); peak RSS of `hook stop` as a multiple of the bare "
            "interpreter's.",
            "",
        ]
        cols = [f"`{c}`" if md else c for c in COLUMNS.values()]  # "<id>" is no HTML tag
        head = [
            "jobs in state",
            "bare",
            *cols,
            "`hook stop` peak RSS" if md else "hook stop peak RSS",
        ]
        lines = []
        for s in sizes:
            line = [s.label, fmt(s.baseline.median, "ms") + " ms"]
            for key in COLUMNS:
                row = s.cases.get(key)
                if row is None or row.median is None:
                    line.append("n/a")
                else:
                    line.append(f"{_times(row.ratio, md)} ({row.median:.1f} ms)")
            hook, base = s.rss_kb.get("hook"), s.rss_kb.get("baseline")
            if hook is None:
                line.append("n/a")
            else:
                rel = f" ({_times(hook / base, md)})" if base else ""
                line.append(f"{hook / 1024:.1f} MiB{rel}")
            lines.append(line)
        out.append(grid(head, lines, md))
    if callers:
        out += [
            "",
            f"Concurrent `run --background -- true` callers in one workspace: N processes "
            f"started together, each making {callers[0].calls_each} calls one after "
            "another; latency of a call as seen by its caller, also as a multiple of the "
            "bare interpreter timed just before (machine quiet); 'missing': acknowledged "
            "job ids not in `status --json --all` afterwards; 'after drain': the jobs' "
            "states once every one has finished.",
            "",
        ]
        head = ["callers", "calls", "wall", "calls/s", "p50", "p99", "failures", "missing"]
        head.append("after drain")
        lines = []
        for c in callers:
            base = c.baseline_ms

            def lat(v: float | None, base: float | None = base) -> str:
                if v is None:
                    return "-"
                return f"{v:.0f} ms" + (f" ({_times(v / base, md)})" if base else "")

            lines.append(
                [
                    str(c.callers),
                    f"{c.calls:,}" + (" (aborted)" if c.aborted else ""),
                    "-" if c.wall_seconds is None else f"{c.wall_seconds:.1f} s",
                    "-" if c.calls_per_second is None else f"{c.calls_per_second:.1f}",
                    lat(c.p50_ms),
                    lat(c.p99_ms),
                    str(c.failures),
                    "?" if c.missing is None else str(c.missing),
                    ", ".join(f"{k} {v:,}" for k, v in sorted(c.statuses.items())) or "-",
                ]
            )
        out.append(grid(head, lines, md, left=1))
    notes = []
    if sizes:
        notes += [
            "`result <oldest finished>`: the oldest finished job, the last entry of the index",
            "`run --background -- true`: timed until it returns; each job is then waited for "
            "and removed again (untimed), so every round sees the same retained jobs",
            "running jobs point at live `sleep` processes (worker and command: 2 per job), "
            "so `status` and `hook stop` probe real processes",
            f"`hook stop` peak RSS: median of {RSS_RUNS} runs (and of as many "
            "bare interpreter runs), see rssTool / rssFloorKiB",
            "state written in: " + ", ".join(f"{s.label} {s.build_seconds:.1f} s" for s in sizes),
        ]
    for c in callers:
        if c.first_failure:
            notes.append(f"{c.callers} callers, first failure: {c.first_failure}")
    if callers:
        notes.append(
            "bare interpreter and load averages just before each N (the callers load the "
            "machine themselves: the load check covers the scaling table only): "
            + "; ".join(
                f"{c.callers}: {fmt(c.baseline_ms, 'ms')} ms, load {c.load_before}" for c in callers
            )
        )
    if notes:
        out += ["", "Notes:", ""] if md else ["", "notes:"]
        out += [f"- {n}" if md else f"  {n}" for n in notes]
    if problems:
        out += ["", "Problems:", ""] if md else ["", "problems:"]
        out += [f"- {k}: {v}" if md else f"  {k}: {v}" for k, v in problems.items()]
    return "\n".join(out)


def scaling_json(
    facts: dict[str, Any], sizes: list[Any], callers: list[Any], problems: dict[str, str]
) -> str:
    """The ``--scaling`` results as one JSON object (with every sample)."""
    out = {
        "machine": facts,
        "scaling": [asdict(s) for s in sizes],
        "concurrency": [asdict(c) for c in callers],
        "problems": problems,
    }
    return json.dumps(out, indent=2)
