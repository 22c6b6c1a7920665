#!/usr/bin/env python3
"""A fake ``codex`` / ``claude`` for tests: it honours the real CLIs' contract as far as
jobgate relies on it, without any model. Which one it is comes from its name (tests link
it into a bin folder as ``codex`` and ``claude``).

Contract, from the real CLIs (see /work/shared/reference/):

``codex`` — ``@openai/codex`` 0.171.0
    ``codex exec [--skip-git-repo-check] [-s|--sandbox read-only|workspace-write|
    danger-full-access] [--output-schema FILE] [-o|--output-last-message FILE] [--json]
    [-m MODEL] [-c key=value] -- PROMPT`` (``-`` reads the prompt from stdin). The final
    message goes to the ``--output-last-message`` file exactly (no trailing newline); with
    ``--output-schema`` it is JSON following that schema. Without ``--json``, stdout
    carries only the final message and the banner (with ``session id:``) goes to stderr;
    with ``--json``, stdout is JSONL: ``thread.started`` (``thread_id``) first, then
    ``turn.started``, ``item.completed`` (an ``agent_message`` with ``text``) and
    ``turn.completed``. Outside a git repo without ``--skip-git-repo-check`` it fails
    ("Not inside a trusted directory", exit 1). Unknown flags: exit 2, as clap does.
    The ``read-only`` sandbox refuses writes: this fake then writes nothing.

``claude`` — ``@anthropic-ai/claude-code`` 2.1.197
    ``claude -p PROMPT [--permission-mode MODE] [--allowedTools=LIST]
    [--disallowedTools=LIST] [--output-format text|json]``: prints the answer (text) on
    stdout. In ``dontAsk`` mode a tool that is not pre-approved is denied, so with
    ``Edit``/``Write`` disallowed it writes nothing.

Test controls (environment):

``FAKE_RECORD``   a folder: each run writes ``<pid>.json`` there with its name, argv,
                  prompt and cwd;
``FAKE_WRITE``    ``PATH=TEXT``: the agent writes TEXT to PATH (relative to its cwd) when
                  its sandbox allows writes;
``FAKE_REVIEW``   the JSON review a schema-bound run answers with (default: one finding);
``FAKE_EXIT``     its exit code (default 0).
"""

from __future__ import annotations

import json
import os
import sys
import uuid

CODEX_FLAGS_WITH_VALUE = {
    "-s",
    "--sandbox",
    "--output-schema",
    "-o",
    "--output-last-message",
    "-m",
    "--model",
    "-c",
}
CODEX_BOOL_FLAGS = {"--skip-git-repo-check", "--json"}
SANDBOXES = {"read-only", "workspace-write", "danger-full-access"}
PERMISSION_MODES = {"acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan"}

DEFAULT_REVIEW = {
    "verdict": "concerns",
    "summary": "one problem",
    "findings": [{"file": "a.txt", "line": 1, "severity": "medium", "text": "looks wrong"}],
}


def _record(name: str, argv: list[str], prompt: str) -> None:
    folder = os.environ.get("FAKE_RECORD")
    if folder:
        with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as fh:
            json.dump({"name": name, "argv": argv, "prompt": prompt, "cwd": os.getcwd()}, fh)


def _write_file() -> None:
    spec = os.environ.get("FAKE_WRITE")
    if spec:
        path, _, text = spec.partition("=")
        with open(path, "w") as fh:
            fh.write(text)


def codex(argv: list[str]) -> int:
    if not argv or argv[0] != "exec":
        sys.stderr.write("fake codex: only `exec` is faked\n")
        return 2
    opts: dict[str, str] = {}
    flags: set[str] = set()
    rest = argv[1:]
    i = 0
    prompt = None
    while i < len(rest):
        arg = rest[i]
        if arg == "--":
            prompt = rest[i + 1] if i + 1 < len(rest) else None
            break
        if arg in CODEX_FLAGS_WITH_VALUE:
            opts[arg] = rest[i + 1]
            i += 2
            continue
        if arg in CODEX_BOOL_FLAGS:
            flags.add(arg)
            i += 1
            continue
        if arg.startswith("-"):
            sys.stderr.write(f"error: unexpected argument '{arg}' found\n")
            return 2
        prompt = arg
        break
    if prompt == "-":
        prompt = sys.stdin.read()
    if prompt is None:
        sys.stderr.write("fake codex: no prompt\n")
        return 2
    sandbox = opts.get("--sandbox", opts.get("-s", "read-only"))
    if sandbox not in SANDBOXES:
        sys.stderr.write(f"error: invalid value '{sandbox}' for '--sandbox'\n")
        return 2
    _record("codex", argv, prompt)
    thread = str(uuid.uuid4())
    if sandbox != "read-only":
        _write_file()
    schema = opts.get("--output-schema")
    if schema is not None:
        with open(schema) as fh:
            json.load(fh)  # the real CLI refuses a schema it cannot read
        message = os.environ.get("FAKE_REVIEW") or json.dumps(DEFAULT_REVIEW)
    else:
        message = "done: " + prompt.splitlines()[0][:60]
    last = opts.get("--output-last-message", opts.get("-o"))
    if last:
        with open(last, "w") as fh:
            fh.write(message)
    if "--json" in flags:
        for event in (
            {"type": "thread.started", "thread_id": thread},
            {"type": "turn.started"},
            {"type": "item.completed", "item": {"type": "agent_message", "text": message}},
            {"type": "turn.completed", "usage": {"input_tokens": 1, "output_tokens": 1}},
        ):
            print(json.dumps(event), flush=True)
    else:
        sys.stderr.write(f"OpenAI Codex (fake)\nsession id: {thread}\n")
        print(message)
    return int(os.environ.get("FAKE_EXIT", "0"))


def claude(argv: list[str]) -> int:
    if "-p" not in argv and "--print" not in argv:
        sys.stderr.write("fake claude: only -p is faked\n")
        return 1
    prompt = None
    mode = "default"
    denied: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-p", "--print"):
            pass
        elif arg == "--permission-mode":
            mode = argv[i + 1]
            if mode not in PERMISSION_MODES:
                sys.stderr.write(f"error: option '--permission-mode <mode>' argument '{mode}'\n")
                return 1
            i += 1
        elif arg.startswith(("--allowedTools=", "--disallowedTools=")):
            key, _, value = arg.partition("=")
            if key == "--disallowedTools":
                denied.update(value.replace(",", " ").split())
        elif arg.startswith("-"):
            sys.stderr.write(f"error: unknown option '{arg}'\n")
            return 1
        elif prompt is None:
            prompt = arg
        i += 1
    if prompt is None:
        sys.stderr.write("Error: Input must be provided either through stdin or as a prompt\n")
        return 1
    _record("claude", argv, prompt)
    if mode != "dontAsk" and not {"Edit", "Write"} & denied:
        _write_file()
    print("The change looks fine to me.\nVerdict: approve")
    return int(os.environ.get("FAKE_EXIT", "0"))


def main() -> int:
    name = os.path.basename(sys.argv[0])
    if name.startswith("claude"):
        return claude(sys.argv[1:])
    return codex(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
