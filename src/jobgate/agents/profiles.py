"""Agent profiles: from a profile name and a prompt to the argv of one agent run. Pure.

A profile is an argv template (``config.BUILTIN_AGENTS``, or ``agents.NAME`` in config).
Two placeholders are filled in, in one pass, so text substituted for one placeholder is
never scanned for the other:

``{prompt}``
    the prompt. An element that is exactly ``"{prompt}"`` becomes the prompt as one argv
    element, whatever it contains (spaces, quotes, ``$(...)``, newlines); an element with
    other text around the placeholder gets the prompt spliced in. No shell is involved
    anywhere, so nothing in the prompt is ever interpreted.
``{lastMessageFile}``
    a file inside the job folder where the agent writes its final message (the built-in
    ``codex`` profile passes it to ``codex exec --output-last-message``). When a profile
    uses it, the job's result is that file's content, else the agent's output.

``{model}``, ``{effort}`` (``task --model M --effort E``)
    optional: an element holding one whose value is not given vanishes, and when the
    element is exactly the placeholder the flag element right before it vanishes too
    (``"--model", "{model}"`` both go; ``"--config=model_reasoning_effort={effort}"``
    goes alone). A profile without the placeholder cannot take that option: asking for
    it is an error, never silently ignored.
``{sessionId}``
    the agent's own session id, in the templates that continue one (:data:`RESUME`).

The first element is the program. It is never a placeholder, so the program that runs
is always the one the profile names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jobgate.state.config import DEFAULT_AGENT as DEFAULT_AGENT  # re-exported
from jobgate.state.errors import JobgateError

PROMPT = "{prompt}"
LAST_MESSAGE_FILE = "{lastMessageFile}"
SESSION_ID = "{sessionId}"
#: the placeholders that vanish (with their flag) when no value is given
OPTIONAL = ("model", "effort")

_PLACEHOLDER = re.compile(r"\{(prompt|lastMessageFile|sessionId|model|effort)\}")

#: how each built-in agent continues one of its sessions (``task --resume``): the same
#: run as its profile in ``config.BUILTIN_AGENTS``, on the session ``{sessionId}``. A
#: configured ``agents.codex``/``agents.claude`` keeps its own program here.
#: ``codex exec resume`` takes no ``--sandbox``; ``--`` ends its options before the id.
RESUME: dict[str, list[str]] = {
    "codex": [
        "codex",
        "exec",
        "resume",
        "--skip-git-repo-check",
        "--output-last-message",
        LAST_MESSAGE_FILE,
        "--model",
        "{model}",
        "--config=model_reasoning_effort={effort}",
        "--",
        SESSION_ID,
        PROMPT,
    ],
    "claude": [
        "claude",
        "-p",
        "--resume",
        SESSION_ID,
        "--output-format",
        "json",
        "--model",
        "{model}",
        "--effort",
        "{effort}",
        PROMPT,
    ],
}

#: how the programs of the built-in profiles print their session id and final message
#: (by program name; :mod:`jobgate.jobs.agent_thread`)
THREAD_FORMATS: dict[str, str] = {"codex": "codex", "claude": "claude"}

#: the command that continues a session interactively, by thread format
INTERACTIVE_RESUME: dict[str, list[str]] = {
    "codex": ["codex", "resume"],
    "claude": ["claude", "--resume"],
}

#: how to install the programs of the built-in profiles (by program name)
INSTALL_HINTS: dict[str, str] = {
    "codex": "npm install -g @openai/codex",
    "claude": "npm install -g @anthropic-ai/claude-code",
}

#: longest default job name derived from a prompt
NAME_LIMIT = 60


@dataclass(frozen=True)
class AgentCommand:
    """One agent run: the profile it came from and the argv to start."""

    agent: str
    argv: tuple[str, ...]
    #: the file the agent writes its final message to, if the profile names one
    result_file: str | None

    @property
    def program(self) -> str:
        return self.argv[0]


def profile(agents: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """The argv template of agent ``name``, or a :class:`JobgateError` listing the known ones."""
    template = agents.get(name)
    if template is None:
        known = ", ".join(sorted(agents)) or "none"
        raise JobgateError(
            f"no agent profile named {name!r} (known: {known}); add one with: "
            f'jobgate config set agents.{name} \'["prog", "--flag", "{PROMPT}"]\''
        )
    template = list(template)
    if not template or not template[0] or _PLACEHOLDER.search(template[0]):
        raise JobgateError(
            f"agent profile {name!r} must start with the program to run, not a placeholder: "
            f"{template!r}"
        )
    if not any(PROMPT in element for element in template):
        raise JobgateError(f"agent profile {name!r} has no {PROMPT} element: {template!r}")
    return template


def uses_last_message_file(template: Sequence[str]) -> bool:
    return any(LAST_MESSAGE_FILE in element for element in template)


def expand(
    template: Sequence[str],
    prompt: str,
    last_message_file: str | None = None,
    *,
    session_id: str | None = None,
    options: Mapping[str, str | None] | None = None,
) -> list[str]:
    """``template`` with its placeholders filled in (see the module docstring).

    ``{lastMessageFile}`` and ``{sessionId}`` need their value; a template that uses one
    without it is a programming error (ValueError). ``options`` gives ``model`` and
    ``effort`` (None or missing: the element and its flag vanish).
    """
    opts = dict(options or {})
    values: dict[str, str | None] = {
        "prompt": prompt,
        "lastMessageFile": last_message_file,
        "sessionId": session_id,
        **{name: opts.get(name) for name in OPTIONAL},
    }

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        if value is None:
            raise ValueError(f"{match.group(0)} used but no value given")
        return value

    out: list[str] = []
    for element in template:
        if element == PROMPT:
            out.append(prompt)  # exactly one argv element, unchanged
            continue
        absent = [n for n in _PLACEHOLDER.findall(element) if n in OPTIONAL and not values[n]]
        if absent:
            if element == "{" + absent[0] + "}" and out and out[-1].startswith("-"):
                out.pop()  # its flag goes with it
            continue
        out.append(_PLACEHOLDER.sub(fill, element))
    return out


def takes(template: Sequence[str], option: str) -> bool:
    """Whether ``template`` has the ``{option}`` placeholder (``model``, ``effort``)."""
    return any("{" + option + "}" in element for element in template)


def check_options(name: str, template: Sequence[str], options: Mapping[str, str | None]) -> None:
    """A :class:`JobgateError` when an option is given that ``template`` cannot pass on."""
    for option, value in options.items():
        if value is None:
            continue
        if not value.strip() or "\x00" in value or value.startswith("-"):
            raise JobgateError(f"--{option} {value!r}: give a name such as 'o3' or 'high'")
        if not takes(template, option):
            raise JobgateError(
                f"agent profile {name!r} has no {{{option}}} placeholder, so --{option} "
                f"cannot reach it: add one, e.g. jobgate config set agents.{name} "
                f'\'["prog", "--{option}", "{{{option}}}", "{PROMPT}"]\''
            )


def resume_template(agents: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """How agent ``name`` continues a session: its :data:`RESUME` template, run with the
    program of its (maybe configured) profile; a :class:`JobgateError` for an agent that
    has none."""
    template = profile(agents, name)
    resume = RESUME.get(name)
    if resume is None:
        raise JobgateError(
            f"agent profile {name!r} has no way to continue a session (only "
            f"{', '.join(sorted(RESUME))} do); start a new one with --fresh"
        )
    return [template[0], *resume[1:]]


def thread_format(template: Sequence[str]) -> str | None:
    """How the profile's program reports its session id (None: it is not known to)."""
    import os

    return THREAD_FORMATS.get(os.path.basename(template[0]))


def interactive_resume(fmt: object, session_id: str) -> list[str] | None:
    """The command that continues session ``session_id`` interactively, if known."""
    base = INTERACTIVE_RESUME.get(fmt) if isinstance(fmt, str) else None
    return [*base, session_id] if base else None


def build(
    agents: Mapping[str, Sequence[str]],
    name: str,
    prompt: str,
    last_message_file: str | None = None,
    *,
    session_id: str | None = None,
    options: Mapping[str, str | None] | None = None,
) -> AgentCommand:
    """Resolve profile ``name`` and fill in ``prompt`` (and the last-message file, if the
    profile uses one: then ``last_message_file`` must be given). With ``session_id`` the
    run continues that session (:func:`resume_template`). ``options`` (``model``,
    ``effort``) must be ones the template takes (:func:`check_options`)."""
    template = profile(agents, name)
    if session_id is not None:
        template = resume_template(agents, name)
    check_options(name, template, options or {})
    result_file = last_message_file if uses_last_message_file(template) else None
    if uses_last_message_file(template) and result_file is None:
        raise ValueError(f"agent profile {name!r} needs a last-message file path")
    argv = expand(template, prompt, result_file, session_id=session_id, options=options)
    return AgentCommand(agent=name, argv=tuple(argv), result_file=result_file)


def missing_program_message(agent: str, program: str, template: Sequence[str]) -> str:
    """One line: which program is missing and how to install it or configure the profile."""
    import json
    import os

    base = os.path.basename(program)
    hint = INSTALL_HINTS.get(base)
    install = f"install it ({hint})" if hint else "install it"
    example = json.dumps(["/path/to/" + base, *list(template)[1:]])
    return (
        f"agent {agent!r} needs the program {program!r}, which was not found"
        f"{' on PATH' if os.sep not in program else ''}: {install}, or point the profile "
        f"at it: jobgate config set agents.{agent} '{example}'"
    )


def check_prompt(prompt: str) -> str:
    """The prompt, or a :class:`JobgateError` if it is empty or only whitespace."""
    if not prompt.strip():
        raise JobgateError("empty prompt: give the task as PROMPT, or - to read it from stdin")
    if "\x00" in prompt:
        raise JobgateError("the prompt contains a NUL byte, which cannot be passed as an argument")
    return prompt


def default_name(agent: str, prompt: str, limit: int = NAME_LIMIT) -> str:
    """A short label for the job: the agent and the start of the prompt's first line."""
    first = next((line for line in prompt.splitlines() if line.strip()), "")
    words = " ".join(first.split())
    if len(words) > limit:
        words = words[: limit - 1].rstrip() + "…"
    return f"{agent}: {words}" if words else agent


# -- review runs (jobgate review) ---------------------------------------------------
#: a JSON schema file the agent's final message must follow (``codex exec --output-schema``)
OUTPUT_SCHEMA_FILE = "{outputSchemaFile}"

#: read-only review runs of the built-in agents. The program is the one the agent's
#: profile names (so ``agents.codex`` pointing at another binary is honoured); the flags
#: are the review's own. Checked against the real CLIs (docs/reference):
#: codex 0.171.0 ``exec --sandbox read-only --output-schema FILE``; claude 2.1.197
#: ``-p`` with ``--permission-mode dontAsk`` (a tool not pre-approved is denied),
#: ``--allowedTools`` the read-only tools and ``--disallowedTools`` the editing ones.
REVIEW_TEMPLATES: dict[str, list[str]] = {
    "codex": [
        "codex",
        "exec",
        "--skip-git-repo-check",
        "--sandbox",
        "read-only",
        "--output-schema",
        OUTPUT_SCHEMA_FILE,
        "--output-last-message",
        LAST_MESSAGE_FILE,
        "--",
        PROMPT,
    ],
    "claude": [
        "claude",
        "-p",
        PROMPT,
        "--permission-mode",
        "dontAsk",
        "--allowedTools=Read,Grep,Glob",
        "--disallowedTools=Edit,Write,NotebookEdit,Bash",
    ],
}


def review_template(agents: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """The read-only review template of agent ``name``, run with the program its profile
    names; a :class:`JobgateError` for an agent jobgate knows no read-only run of."""
    template = REVIEW_TEMPLATES.get(name)
    if template is None:
        known = ", ".join(sorted(REVIEW_TEMPLATES))
        raise JobgateError(
            f"agent {name!r} has no read-only review profile (review agents: {known})"
        )
    program = profile(agents, name)[0] if name in agents else template[0]
    return [program, *template[1:]]
