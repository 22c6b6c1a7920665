#!/bin/sh
# Claude Code runs this as: hook.sh EVENT  (the hook's JSON payload on stdin).
# It runs `jobgate hook EVENT` when the jobgate command is installed: through the
# jobgate-hook script installed beside it when there is one (the same jobgate, ~5 ms
# quicker at every turn: the console script imports `re` first), else through jobgate.
# Either way it fails open: exit status 0 always (an exit status of 2 would make Claude
# Code block), and when jobgate is missing, one line on stderr says how to install it.
event=${1:-}
if jobgate=$(command -v jobgate 2>/dev/null); then
  fast=
  case $jobgate in
    */*)
      fast=${jobgate%/*}/jobgate-hook
      # a jobgate linked onto the PATH alone: look beside what the link names
      if [ ! -x "$fast" ] && [ -L "$jobgate" ] && target=$(readlink "$jobgate" 2>/dev/null); then
        case $target in
          /*) fast=${target%/*}/jobgate-hook ;;
          */*) fast=${jobgate%/*}/${target%/*}/jobgate-hook ;;
        esac
      fi
      ;;
  esac
  if [ -n "$fast" ] && [ -x "$fast" ]; then
    "$fast" "$event"
  else
    jobgate hook "$event"
  fi
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "jobgate plugin: 'jobgate hook $event' exited with status $status; ignored (the hook fails open)" >&2
  fi
  exit 0
fi
[ -t 0 ] || cat >/dev/null 2>&1  # take the payload, so Claude Code's write never fails
echo "jobgate plugin: the jobgate command is not on PATH, so the $event hook did nothing; install it from a jobgate checkout with 'pipx install /path/to/jobgate' (or 'pip install /path/to/jobgate' into an environment on this PATH), then restart Claude Code" >&2
exit 0
