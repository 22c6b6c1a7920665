"""``python -X importtime`` of a jobgate command: median µs per imported module."""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any


def import_breakdown(
    jg: list[str],
    env: dict[str, str],
    ws: str,
    tail: list[str],
    stdin: bytes | None = None,
    runs: int = 5,
    top: int = 15,
) -> dict[str, Any]:
    """``python -X importtime`` of ``jobgate <tail>`` in ``ws``: median µs per module."""
    argv = [sys.executable, "-X", "importtime", *(jg if len(jg) == 1 else ["-m", "jobgate"])]
    argv += tail
    self_us: dict[str, list[int]] = {}
    cum_us: dict[str, list[int]] = {}
    depth: dict[str, int] = {}
    totals: list[int] = []
    for _ in range(runs + 1):
        proc = subprocess.run(
            argv, input=stdin, cwd=ws, env=env, capture_output=True, timeout=60, check=False
        )
        total = 0
        rows: list[tuple[str, int, int, int]] = []
        for line in proc.stderr.decode(errors="replace").splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            body = line[len("import time:") :]
            self_text, cum_text, name = body.split("|", 2)
            mod = name.rstrip()
            level = (len(mod) - len(mod.lstrip())) // 2
            rows.append((mod.strip(), int(self_text), int(cum_text), level))
            total += int(self_text)
        if not rows:
            continue
        totals.append(total)
        for mod, s, c, level in rows:
            self_us.setdefault(mod, []).append(s)
            cum_us.setdefault(mod, []).append(c)
            depth[mod] = min(depth.get(mod, level), level)
    if not totals:
        return {}
    totals = totals[1:] or totals  # the first run may compile byte code
    med_self = {m: statistics.median(v) for m, v in self_us.items()}
    med_cum = {m: statistics.median(v) for m, v in cum_us.items()}
    top_level = sorted(((m, v) for m, v in med_cum.items() if depth[m] == 0), key=lambda x: -x[1])[
        :top
    ]
    by_self = sorted(med_self.items(), key=lambda x: -x[1])[:top]
    return {
        "command": " ".join(argv),
        "totalSelfUs": statistics.median(totals),
        "topLevelCumulativeUs": top_level,
        "topSelfUs": by_self,
        "modules": len(med_self),
    }
