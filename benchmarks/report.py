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
