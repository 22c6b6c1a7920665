"""One liveness probe (``jobgate.proc.liveness.probe``) in-process, next to psutil's
``Process(pid).create_time()``: µs per call."""

from __future__ import annotations

import statistics
import timeit

from benchmarks.fixtures import Sleepers
from benchmarks.timing import Row


def bench_probe(sleepers: Sleepers, number: int) -> tuple[Row, Row]:
    import psutil

    from jobgate.proc import liveness

    ident = sleepers.spawn()
    pid = ident["pid"]
    verdict = liveness.probe(ident)
    if verdict[0] != liveness.ALIVE:
        raise RuntimeError(f"probe of a live sleep said {verdict}")
    probe = liveness.probe
    per_call = [
        t / number * 1e6 for t in timeit.repeat(lambda: probe(ident), number=number, repeat=7)
    ]
    jg = Row(
        "liveness.probe(identity), live pid",
        "us",
        statistics.median(per_call),
        max(per_call),
        target="< 20 us (Linux)",
        note=f"in-process, {number} calls x 7 repeats; p90 column = slowest repeat",
        samples=per_call,
    )
    jg.ok = jg.median is not None and jg.median < 20.0
    n_ps = max(1000, number // 5)
    ps = [
        t / n_ps * 1e6
        for t in timeit.repeat(lambda: psutil.Process(pid).create_time(), number=n_ps, repeat=7)
    ]
    ps_row = Row(
        "psutil.Process(pid).create_time() (contrast)",
        "us",
        statistics.median(ps),
        max(ps),
        note=f"in-process, {n_ps} calls x 7 repeats; excludes psutil's import",
        samples=ps,
    )
    return jg, ps_row
