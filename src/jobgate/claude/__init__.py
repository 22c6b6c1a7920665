"""Claude Code: the hook decisions (pure), the stdin/stdout shell that runs them, the Stop
review gate's runner, and session-end cleanup.

The Stop hook runs at every turn, so modules here import lazily and only what their path
needs. May import ``jobgate.jobs``, ``jobgate.proc`` and ``jobgate.state``.
"""
