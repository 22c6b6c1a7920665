"""``jobgate doctor codex``: the Codex companion plugin's files (read and rewritten without
disturbing them), where its state lives, the pure rules that judge its job records, the
per-workspace check and repair, and the report.

May import ``jobgate.proc`` (to probe the plugin's recorded pids) and ``jobgate.state``.
"""
