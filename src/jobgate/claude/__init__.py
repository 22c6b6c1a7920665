"""Claude Code: the hook decisions (pure, ``hooks``), the stdin/stdout shell that runs them
and the Stop hook (``shell``), the other paths a hook takes (``hook_state``,
``review_gate``, ``sessions``, ``announcements``, ``hook_help``), the review gate's rules
(``review_rules``) and runner (``review``), and session-end cleanup (``cleanup``).

The Stop hook runs at every turn, so modules here import lazily and only what their path
needs. May import ``jobgate.jobs``, ``jobgate.proc`` and ``jobgate.state``.
"""
