#!/usr/bin/env python3
"""jobgate benchmarks: one run, one machine, every number next to a bare interpreter start.

Usage::

    python benchmarks/bench.py [--quick] [--json] [--imports [--markdown]] [--rounds N]
    python benchmarks/bench.py --scaling [--sizes 10,100] [--running 10] [--writers 2,8]

Measures the jobgate installed in the *running* interpreter's environment: the console
script next to ``sys.executable`` (``<venv>/bin/jobgate``), else ``python -m jobgate``.

1. baseline: wall time of ``python -I -S -c pass`` (the same interpreter);
2. ``jobgate status --json`` with 50 and with 1,000 retained jobs (plus ``--all`` with
   1,000, for the cost of printing every record);
3. ``jobgate hook stop`` with 50 jobs in state (review gate off), if the installed
   jobgate has the ``hook`` command;
4. one liveness probe (``jobgate.proc.liveness.probe``) in-process, next to psutil's
   ``Process(pid).create_time()``;
5. ``jobgate run --background -- true`` return time; how soon ``jobgate wait`` notices a
   job killed from outside;
6. locked read-modify-write transactions per second with 8 concurrent writer processes,
   and a check that none was lost.

``--scaling`` measures two other tables instead (see README.md): the hot commands and the
Stop hook's peak RSS against 10 ... 10,000 retained and 10 / 100 running jobs, and N
concurrent ``run --background`` callers in one workspace.

The subprocess cases (1-3) run interleaved, round by round, so drift in the machine's
speed hits them all alike. State is written with jobgate's own ``Store`` and ``model``
functions into a temporary ``JOBGATE_HOME``; running jobs point at live ``sleep``
processes (identities from ``jobgate.proc.liveness.capture``), so every status call probes
real processes. Everything lives in one temp dir that is removed at the end, and every
process started here is ended and reaped.

Only the standard library and psutil (a jobgate dependency) are used. This is not part of
the test suite: targets are checked by hand (see docs/performance.md).

This file is only the entry point: each measurement lives in its own module of the
``benchmarks`` package beside it (see ``benchmarks/__init__.py``), run by
:func:`benchmarks.runner.main`. The writer processes of the concurrent-writers case run
this script again with a hidden ``--_writer`` flag, the callers of the concurrency table
with ``--_caller``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    # Run as a script, sys.path[0] is this folder: put the checkout root there instead, so
    # the modules beside this file are imported once, as the ``benchmarks`` package (and
    # none of them can shadow a module of the same name elsewhere).
    if sys.path and Path(sys.path[0] or ".").resolve() == here:
        sys.path[0] = str(here.parent)
    elif str(here.parent) not in sys.path:  # e.g. python -P
        sys.path.insert(0, str(here.parent))
    from benchmarks.runner import main as run

    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
