"""The concurrency table's floor: the same process shape as N callers of
``jobgate run --background -- true``, without jobgate.

Each call is an interpreter with ``site`` that imports ``re`` (as pip's console script
does), ``posix_spawn``s a second interpreter (``-S``, a few C modules imported, as the
worker) in its own session, waits for that one's first byte on a pipe (the handshake)
and exits. N caller processes make their calls one after another, all started together.
What is left between N=2 and N=32 is what 32 starting interpreters cost each other on
this machine's cores: no design that starts interpreters per call can do better than
this ratio here (docs/performance.md, "Less CPU per job", issue 15).

    python benchmarks/launch_floor.py                 # N = 2 and 32, 50 calls each, ~1 min
    python benchmarks/launch_floor.py --callers 2,8,32 --calls 20 --json
    python benchmarks/launch_floor.py --single        # one interpreter per call
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

#: the second interpreter: the worker's shape (no site, a few C modules, one byte back)
CHILD = "import os, sys, fcntl, zlib, select, math; os.write(int(sys.argv[1]), b'x')"


def _call_program(python: str) -> str:
    """The first interpreter of a call: the CLI's shape."""
    return (
        "import re, os, sys\n"
        "r, w = os.pipe(); os.set_inheritable(w, True)\n"
        f"argv = [{python!r}, '-S', '-c', {CHILD!r}, str(w)]\n"
        f"os.posix_spawn({python!r}, argv, dict(os.environ), setsid=True)\n"
        "os.close(w); os.read(r, 1)\n"
        "print('id')\n"
    )


def _caller_program(python: str, calls: int, single: bool = False) -> str:
    call = "import re; print('id')" if single else _call_program(python)
    return (
        "import subprocess, sys\n"
        f"argv = [{python!r}, '-c', {call!r}]\n"
        f"for _ in range({calls}):\n"
        "    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)\n"
    )


def measure(callers: int, calls: int, python: str = sys.executable, single: bool = False) -> float:
    """Calls per second of ``callers`` concurrent callers making ``calls`` calls each;
    ``single``: each call one interpreter only (the CLI's start, no second one)."""
    program = _caller_program(python, calls, single)
    start = time.perf_counter()
    procs = [subprocess.Popen([python, "-c", program]) for _ in range(callers)]
    for proc in procs:
        proc.wait(timeout=600)
    return callers * calls / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="calls/s of the launch's process shape without jobgate, per N callers",
        epilog="example: python benchmarks/launch_floor.py --callers 2,32 --calls 50",
    )
    parser.add_argument("--callers", default="2,32", help="comma-separated N (default: 2,32)")
    parser.add_argument("--calls", type=int, default=50, help="calls per caller (default: 50)")
    parser.add_argument(
        "--single",
        action="store_true",
        help="one interpreter per call (site + re, then exit): the least any CLI call costs",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.callers.split(",") if n]
    rates = {n: measure(n, args.calls, single=args.single) for n in sizes}
    if args.json:
        print(json.dumps({"calls": args.calls, "callsPerSecond": rates}))
        return 0
    first = rates[sizes[0]]
    for n, rate in rates.items():
        print(f"N={n:>3}  {rate:6.1f} calls/s  ({rate / first:.0%} of N={sizes[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
