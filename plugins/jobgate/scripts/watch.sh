#!/bin/sh
# Claude Code runs this as a plugin monitor (monitors/monitors.json) for the whole
# session; each line it prints reaches Claude as a notification. It runs
#   jobgate watch --session <this session> --events finished,lost --interval 2
# which prints one line when one of the session's background jobs finishes or is found
# lost (each job once: it is marked announced, so the UserPromptSubmit notice skips it),
# and ends with the session: when Claude Code stops it, or is gone.
# Without jobgate on PATH, or without a session id, it prints nothing on stdout (one
# line on stderr) and exits 0: nothing is pushed, the prompt hook still tells Claude.
session=${CLAUDE_CODE_SESSION_ID:-${JOBGATE_SESSION_ID:-}}
if [ -z "$session" ]; then
  echo "jobgate plugin: no session id (CLAUDE_CODE_SESSION_ID is unset), so finished jobs are not pushed; the next prompt still names them" >&2
  exit 0
fi
if ! command -v jobgate >/dev/null 2>&1; then
  echo "jobgate plugin: the jobgate command is not on PATH, so finished jobs are not pushed; install it from a jobgate checkout with 'pipx install /path/to/jobgate', then restart Claude Code" >&2
  exit 0
fi
exec jobgate watch --session "$session" --events finished,lost --interval 2
