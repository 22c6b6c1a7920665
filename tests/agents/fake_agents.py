"""Fake ``codex`` and ``claude`` programs for tests: never a model, but the command-line
contract of the real CLIs, so a built-in profile that drifts from it fails here too.
(tests/e2e/test_agent_clis.py checks the same flags against the real binaries' --help.)

Both record the argv, stdin and cwd they got in ``<program>.argv.json`` beside them (the
last run; every run is appended to ``<program>.runs.jsonl``) and keep their sessions in
``<program>.sessions/`` beside them. Knobs: ``FAKE_EXIT`` (exit code),
``FAKE_NO_LAST_MESSAGE`` (codex writes no ``-o`` file), ``FAKE_NO_SESSION`` (no session
id is printed), ``FAKE_SLEEP`` (codex, plain output: seconds to sleep after its banner).

The codex fake follows ``@openai/codex`` 0.171.0 (observed: shared/reference/codex-cli.md
and its ``--help``):

- ``codex exec [OPTIONS] [--] PROMPT`` and ``codex exec resume [OPTIONS] [--] SESSION_ID
  PROMPT``; options ``--skip-git-repo-check``, ``-o/--output-last-message FILE``,
  ``-m/--model M``, ``-c/--config K=V`` (also ``--config=K=V``), ``--json``; ``exec`` also
  takes ``-s/--sandbox MODE``, ``exec resume`` does not. An unknown option is an error,
  exit 2, as clap does. Without ``--skip-git-repo-check`` outside a git repo: exit 1.
- Plain output: the final message on stdout; the banner (with ``session id: ID``, and
  ``model:``/``reasoning effort:`` lines) on stderr. ``--json``: JSONL on stdout,
  ``thread.started`` (``thread_id``) first, then ``turn.started``, ``item.completed``
  (``agent_message`` with ``text``) and ``turn.completed``.
- ``exec resume`` continues the thread with the same id (it prints the same
  ``thread_id``); an unknown id is an error (exit 1; the fake's own wording).

The claude fake follows ``@anthropic-ai/claude-code`` 2.1.197 (observed against a local
scripted API, and its ``--help``):

- ``claude -p [--resume ID] [--output-format text|json|stream-json] [--model M]
  [--effort E] PROMPT``; ``stream-json`` with ``-p`` needs ``--verbose``. An unknown
  option is an error (exit 1, as commander does).
- ``json``: one object, ``{"type": "result", "subtype": "success", "is_error": false,
  "result": TEXT, "session_id": ID, ...}``; ``text`` (the default): TEXT alone.
- ``--resume ID`` continues that session under the same id; an unknown id: exit 1 with
  ``No conversation found with session ID: ID``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_COMMON = r'''#!{python}
import json, os, sys, uuid
HERE = os.path.dirname(os.path.abspath(__file__))
ME = os.path.join(HERE, os.path.basename(__file__))
SESSIONS = ME + ".sessions"
args = sys.argv[1:]
stdin = sys.stdin.read() if sys.stdin is not None else None
record = {{"argv": args, "stdin": stdin, "cwd": os.getcwd()}}
with open(ME + ".argv.json", "w") as fh:
    json.dump(record, fh)
with open(ME + ".runs.jsonl", "a") as fh:
    fh.write(json.dumps(record) + "\n")

def fail(code, text):
    sys.stderr.write(text + "\n")
    sys.exit(code)

def session(sid):
    """The turns so far of session sid (None: unknown)."""
    try:
        with open(os.path.join(SESSIONS, sid)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None

def save(sid, turns):
    os.makedirs(SESSIONS, exist_ok=True)
    with open(os.path.join(SESSIONS, sid), "w") as fh:
        json.dump(turns, fh)
'''

CODEX = (
    _COMMON
    + r"""
if args[:1] != ["exec"]:
    fail(2, "the fake codex knows only: codex exec")
args = args[1:]
resume = args[:1] == ["resume"]
if resume:
    args = args[1:]
with_value = {{"-o": "out", "--output-last-message": "out", "-m": "model", "--model": "model",
              "-c": "config", "--config": "config"}}
if not resume:
    with_value.update({{"-s": "sandbox", "--sandbox": "sandbox"}})
opts = {{"config": []}}
flags = set()
positional = []
i = 0
while i < len(args):
    a = args[i]
    if a == "--":
        positional += args[i + 1:]
        break
    if a.startswith("-") and a != "-":
        name, eq, value = a.partition("=")
        if name in with_value:
            if not eq:
                i += 1
                if i >= len(args):
                    fail(2, f"error: a value is required for '{{name}}'")
                value = args[i]
            key = with_value[name]
            if key == "config":
                opts["config"].append(value)
            else:
                opts[key] = value
        elif a in ("--skip-git-repo-check", "--json"):
            flags.add(a)
        else:
            fail(2, f"error: unexpected argument '{{a}}' found")
    else:
        positional.append(a)
    i += 1
if "--skip-git-repo-check" not in flags and not os.path.isdir(".git"):
    fail(1, "Not inside a trusted directory and --skip-git-repo-check was not specified.")
if resume:
    if len(positional) != 2:
        fail(2, "the fake codex wants: codex exec resume SESSION_ID PROMPT")
    sid, prompt = positional
    turns = session(sid)
    if turns is None:
        fail(1, f"Error: no rollout found for thread id {{sid}}")
else:
    if len(positional) != 1:
        fail(2, f"error: unexpected arguments {{positional!r}}")
    sid, prompt, turns = str(uuid.uuid4()), positional[0], []
turns.append(prompt)
save(sid, turns)
effort = next((c.split("=", 1)[1] for c in opts["config"]
               if c.startswith("model_reasoning_effort=")), "medium")
model = opts.get("model", "gpt-default")
message = "FINAL MESSAGE for: " + prompt
if resume:
    message += f" (turn {{len(turns)}} of the thread)"
show_id = not os.environ.get("FAKE_NO_SESSION")
if "--json" in flags:
    if show_id:
        print(json.dumps({{"type": "thread.started", "thread_id": sid}}))
    print(json.dumps({{"type": "turn.started"}}))
    print(json.dumps({{"type": "item.completed",
                      "item": {{"id": "item_0", "type": "agent_message", "text": message}}}}))
    usage = {{"input_tokens": 1, "output_tokens": 1}}
    print(json.dumps({{"type": "turn.completed", "usage": usage}}))
else:
    sys.stderr.write("OpenAI Codex v0.171.0 (fake)\n--------\n")
    sys.stderr.write(f"model: {{model}}\nreasoning effort: {{effort}}\n")
    if show_id:
        sys.stderr.write(f"session id: {{sid}}\n")
    sys.stderr.write("--------\nuser\n" + prompt + "\nthinking... running tools...\n")
    sys.stderr.flush()
    if os.environ.get("FAKE_SLEEP"):
        import time
        time.sleep(float(os.environ["FAKE_SLEEP"]))
    print("codex stdout chatter")
if "out" in opts and not os.environ.get("FAKE_NO_LAST_MESSAGE"):
    with open(opts["out"], "w") as fh:
        fh.write(message)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""
)

CLAUDE = (
    _COMMON
    + r"""
with_value = {{"--resume": "resume", "-r": "resume", "--output-format": "format",
              "--model": "model", "--effort": "effort"}}
opts = {{}}
flags = set()
positional = []
i = 0
while i < len(args):
    a = args[i]
    if a in with_value:
        i += 1
        if i >= len(args):
            fail(1, f"error: option '{{a}}' argument missing")
        opts[with_value[a]] = args[i]
    elif a in ("-p", "--print", "--verbose"):
        flags.add(a)
    elif a.startswith("-"):
        fail(1, f"error: unknown option '{{a}}'")
    else:
        positional.append(a)
    i += 1
if not flags & {{"-p", "--print"}}:
    fail(1, "the fake claude runs only with -p")
fmt = opts.get("format", "text")
if fmt not in ("text", "json", "stream-json"):
    fail(1, f"Error: Invalid output format: {{fmt}}")
if fmt == "stream-json" and "--verbose" not in flags:
    fail(1, "Error: When using --print, --output-format=stream-json requires --verbose")
if len(positional) != 1:
    fail(1, f"the fake claude wants one prompt, got {{positional!r}}")
prompt = positional[0]
sid = opts.get("resume")
if sid is not None:
    turns = session(sid)
    if turns is None:
        fail(1, f"No conversation found with session ID: {{sid}}")
else:
    sid, turns = str(uuid.uuid4()), []
turns.append(prompt)
save(sid, turns)
text = f"claude answer {{len(turns)}} to: {{prompt}}"
if "model" in opts:
    text += f" [model {{opts['model']}}]"
result = {{"type": "result", "subtype": "success", "is_error": False, "result": text,
          "num_turns": 1}}
if not os.environ.get("FAKE_NO_SESSION"):
    result["session_id"] = sid
if fmt == "text":
    print(text)
elif fmt == "json":
    print(json.dumps(result))
else:
    print(json.dumps({{"type": "system", "subtype": "init", "session_id": sid}}))
    print(json.dumps(result))
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""
)


def install(path: Path, template: str) -> Path:
    """Write the fake ``template`` (:data:`CODEX`, :data:`CLAUDE`) as executable ``path``."""
    path.write_text(template.format(python=sys.executable))
    path.chmod(0o755)
    return path


def received(program: Path) -> dict[str, Any]:
    """What the last run of fake ``program`` got: ``argv``, ``stdin``, ``cwd``."""
    data: dict[str, Any] = json.loads(Path(str(program) + ".argv.json").read_text())
    return data


def runs(program: Path) -> list[dict[str, Any]]:
    """Every run of fake ``program``, oldest first."""
    path = Path(str(program) + ".runs.jsonl")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
