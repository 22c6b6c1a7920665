"""The job lifecycle: launching a job (foreground or with a detached worker), the worker
itself, reconciling records with the processes they name (pure) and writing down what is
found, and acting on jobs (pick, cancel, wait, result).

May import ``jobgate.state`` and ``jobgate.proc``; never ``agents``, ``claude``,
``codex`` or ``cli``.
"""
