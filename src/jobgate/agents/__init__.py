"""Agent CLIs as jobs: profiles that turn a profile name and a prompt into the argv of one
agent run (Codex, Claude, or a user's own), and what a task adds to a plain job.

May import ``jobgate.jobs``, ``jobgate.proc`` and ``jobgate.state``.
"""
