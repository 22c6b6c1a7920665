"""jobgate benchmarks: one run, one machine, every number next to a bare interpreter start.

Run them with ``python benchmarks/bench.py`` (see README.md). One module per measured
thing, each returning result rows:

- :mod:`benchmarks.startup`: whole-process wall time of a bare interpreter start,
  ``jobgate status --json`` (50 and 1,000 jobs) and the Stop hook, interleaved;
- :mod:`benchmarks.liveness_probe`: one in-process ``jobgate.proc.liveness.probe``,
  next to psutil;
- :mod:`benchmarks.run_background`: how soon ``jobgate run --background`` returns;
- :mod:`benchmarks.wait_notices_kill`: how soon ``jobgate wait`` notices a job killed
  from outside;
- :mod:`benchmarks.writers`: locked read-modify-writes per second with concurrent writer
  processes, none lost;
- :mod:`benchmarks.import_time`: ``python -X importtime`` breakdown of status and hook;
- :mod:`benchmarks.scaling` (``--scaling``): the hot commands and the Stop hook's peak RSS
  against 10 ... 10,000 retained and 10 / 100 running jobs;
- :mod:`benchmarks.concurrent_runs` (``--scaling``): N concurrent ``run --background``
  callers in one workspace: throughput, latency, failures, acknowledged jobs missing.

Shared helpers: :mod:`benchmarks.timing` (rows, medians, timed and interleaved runs),
:mod:`benchmarks.environment` (the jobgate under test, machine facts, the subprocess
environment), :mod:`benchmarks.fixtures` (workspaces, state and live processes),
:mod:`benchmarks.report` (table, Markdown, JSON). :mod:`benchmarks.runner` parses the
flags and runs them in turn; ``bench.py`` is its script entry point.
"""
