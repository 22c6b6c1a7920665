"""Settings: the known keys, their defaults and validation. Parsing is pure; reading and
writing go through :class:`jobgate.state.store.Store` (``config.json``, under the lock).

Keys::

    maxJobs          int >= 1   finished jobs kept (active jobs are never pruned)  [50]
    stopReviewGate   bool       run the review command at Stop                     [false]
    reviewCommand    str        command line of the reviewer (split like a shell)  [codex exec ...]
    reviewTimeout    number >= 0.1 seconds the reviewer may take                   [900]
    waitForJobs      bool       Stop blocks while the session's jobs run           [false]
    maxStopBlocks    int >= 1   at most this many blocks in a row for the same jobs [3]
    sessionEndCancels  exit-only, always or never: when Claude Code's SessionEnd cancels
                     the session's jobs: when the client exits (not at /clear, /resume),
                     at every SessionEnd, or never                         [exit-only]
    agents.NAME      JSON list of strings, one of which contains "{prompt}"
    maxParallel      int >= 1   jobs of a group running at once (queued jobs wait)  [unlimited]
    groups.G.maxParallel  int >= 1   the same for group G (else maxParallel)
    queueByDefault   bool       background run/task queue without --queue           [false]
    timeout          duration   a job running longer is ended, failed/timeout       [none]
    stall            duration   a job with no new log output that long is ended, failed/stalled
    agents.NAME.timeout, agents.NAME.stall   the same for tasks of that agent profile
                     (durations: 90, 90s, 30m, 2h, 1h30m)
"""

from __future__ import annotations

from jobgate.state.errors import JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_REVIEW_COMMAND = "codex exec --skip-git-repo-check -"

DEFAULTS: dict[str, Any] = {
    "maxJobs": 50,
    "stopReviewGate": False,
    "reviewCommand": DEFAULT_REVIEW_COMMAND,
    "reviewTimeout": 900,
    "waitForJobs": False,
    "maxStopBlocks": 3,
    "sessionEndCancels": "exit-only",
    "maxParallel": None,
    "queueByDefault": False,
    "timeout": None,
    "stall": None,
}

#: settings with a name in the middle: ``groups.G.maxParallel``, ``agents.NAME.timeout``
COMPOUND = {"groups": ("maxParallel",), "agents": ("timeout", "stall")}

#: the values of ``sessionEndCancels``
SESSION_END_CHOICES = ("exit-only", "always", "never")

#: the agent ``jobgate task`` uses without ``--agent``
DEFAULT_AGENT = "codex"

#: built-in agent profiles (argv templates); "{prompt}" is replaced by the prompt as
#: one argv element, never through a shell; "{lastMessageFile}" by a file in the job
#: folder whose content becomes the job's result (see jobgate.agents.profiles). codex exec writes
#: its final message there (--output-last-message); "--" keeps a prompt that starts with
#: "-" or names an exec subcommand ("review", "resume") a prompt. "{model}" and "{effort}"
#: (task --model/--effort) vanish, with the flag before them, when not given; claude's JSON
#: output carries its session id and final message (jobgate.jobs.agent_thread).
BUILTIN_AGENTS: dict[str, list[str]] = {
    "codex": [
        "codex",
        "exec",
        "--skip-git-repo-check",
        "--output-last-message",
        "{lastMessageFile}",
        "--model",
        "{model}",
        "--config=model_reasoning_effort={effort}",
        "--",
        "{prompt}",
    ],
    "claude": [
        "claude",
        "-p",
        "--output-format",
        "json",
        "--model",
        "{model}",
        "--effort",
        "{effort}",
        "{prompt}",
    ],
}

#: the shortest timeout a setting may name, in seconds
MIN_SECONDS = 0.1

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise JobgateError(f"bad value for {key}: {value!r} (expected true or false)")


def _parse_int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise JobgateError(f"bad value for {key}: {value!r} (expected a whole number)")
    if isinstance(value, int):
        number = value
    else:
        try:
            number = int(str(value).strip(), 10)
        except ValueError:
            raise JobgateError(
                f"bad value for {key}: {value!r} (expected a whole number >= {minimum})"
            ) from None
    if number < minimum:
        raise JobgateError(f"bad value for {key}: {number} (must be >= {minimum})")
    return number


def _parse_seconds(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise JobgateError(f"bad value for {key}: {value!r} (expected seconds)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise JobgateError(
            f"bad value for {key}: {value!r} (expected seconds >= {MIN_SECONDS})"
        ) from None
    if not number >= MIN_SECONDS or number != number or number == float("inf"):
        # a reviewer cannot even start in less (1e-320 passed "> 0")
        raise JobgateError(f"bad value for {key}: {value!r} (expected seconds >= {MIN_SECONDS})")
    return int(number) if number.is_integer() else number


def _parse_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise JobgateError(f"bad value for {key}: {value!r} (expected one of: {', '.join(choices)})")


def _parse_command_line(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobgateError(f"bad value for {key}: expected a non-empty command line")
    import shlex

    try:
        shlex.split(value)
    except ValueError as exc:
        raise JobgateError(f"bad value for {key}: {exc}") from None
    return value


def _parse_agent(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise JobgateError(
                f"bad value for {key}: expected a JSON list like "
                '\'["prog", "--flag", "{prompt}"]\''
            ) from None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise JobgateError(f"bad value for {key}: expected a non-empty JSON list of strings")
    if not any("{prompt}" in v for v in value):
        raise JobgateError(f"bad value for {key}: one element must contain {{prompt}}")
    return list(value)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(key: str, value: Any) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``2h``, ``1h30m`` (at least 0.1 s), else
    :class:`JobgateError` naming ``key``."""
    import re

    bad = f"bad value for {key}: {value!r} (expected a duration like 90s, 30m, 2h, 1h30m)"
    if isinstance(value, bool):
        raise JobgateError(bad)
    if isinstance(value, (int, float)):
        total = float(value)
    else:
        text = str(value).strip().lower()
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text)
        if not text or not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd]?)|\s", "", text):
            raise JobgateError(bad)
        if len(parts) > 1 and any(not unit for _n, unit in parts):
            raise JobgateError(bad)
        total = sum(float(n) * _UNITS[unit or "s"] for n, unit in parts)
    if not total >= MIN_SECONDS or total == float("inf"):
        raise JobgateError(bad)
    return int(total) if total.is_integer() else total


def split_compound(key: str) -> tuple[str, str, str] | None:
    """``(kind, name, field)`` of a ``groups.G.maxParallel`` / ``agents.NAME.timeout``
    key, else None."""
    parts = key.split(".")
    if len(parts) == 3 and parts[2] in COMPOUND.get(parts[0], ()):
        return parts[0], parts[1], parts[2]
    return None


def validate(key: str, value: Any) -> Any:
    """The typed value for ``key``, or :class:`JobgateError` naming what is wrong."""
    compound = split_compound(key)
    if compound is not None:
        name = compound[1]
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise JobgateError(f"bad name in {key!r} (letters, digits, - and _)")
        if compound[2] == "maxParallel":
            return _parse_int(key, value, 1)
        return parse_duration(key, value)
    if key == "maxParallel":
        return _parse_int(key, value, 1)
    if key == "queueByDefault":
        return _parse_bool(key, value)
    if key in ("timeout", "stall"):
        return parse_duration(key, value)
    if key == "maxJobs":
        # 0 would prune every job the moment it finishes, its outcome unread
        return _parse_int(key, value, 1)
    if key in ("stopReviewGate", "waitForJobs"):
        return _parse_bool(key, value)
    if key == "reviewCommand":
        return _parse_command_line(key, value)
    if key == "reviewTimeout":
        return _parse_seconds(key, value)
    if key == "maxStopBlocks":
        return _parse_int(key, value, 1)
    if key == "sessionEndCancels":
        return _parse_choice(key, value, SESSION_END_CHOICES)
    if key.startswith("agents."):
        name = key[len("agents.") :]
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise JobgateError(f"bad agent name in {key!r} (letters, digits, - and _)")
        return _parse_agent(key, value)
    known = ", ".join(
        [*DEFAULTS, "agents.NAME", "groups.G.maxParallel", "agents.NAME.timeout|stall"]
    )
    raise JobgateError(f"unknown config key {key!r} (known keys: {known})")


def effective(stored: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with valid stored values (an invalid stored value is ignored,
    with one warning on stderr per key and process, see :func:`problem`)."""
    out = dict(DEFAULTS)
    agents = {name: list(argv) for name, argv in BUILTIN_AGENTS.items()}
    nested: dict[str, dict[str, dict[str, Any]]] = {"groups": {}, "agentLimits": {}}
    for key, value in stored.items():
        typed = usable(key, value, _INVALID)
        if typed is _INVALID:
            continue
        compound = split_compound(key)
        if compound is not None:
            where = nested["groups" if compound[0] == "groups" else "agentLimits"]
            where.setdefault(compound[1], {})[compound[2]] = typed
        elif key.startswith("agents."):
            agents[key[len("agents.") :]] = typed
        else:
            out[key] = typed
    out["agents"] = agents
    out.update(nested)
    return out


def flat(eff: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(key, value)`` of every effective setting (:func:`effective`) as ``config set``
    names it: ``agents.NAME``, ``groups.G.maxParallel``, ``agents.NAME.timeout``."""
    out: list[tuple[str, Any]] = []
    for key, value in eff.items():
        if key == "agents":
            out += [(f"agents.{name}", argv) for name, argv in value.items()]
        elif key in ("groups", "agentLimits"):
            prefix = "groups" if key == "groups" else "agents"
            out += [
                (f"{prefix}.{name}.{field}", v)
                for name, fields in value.items()
                for field, v in fields.items()
            ]
        else:
            out.append((key, value))
    return out


def get(stored: dict[str, Any], key: str) -> Any:
    eff = effective(stored)
    compound = split_compound(key)
    if compound is not None:
        validate(key, 1)  # checks the name
        where = eff["groups" if compound[0] == "groups" else "agentLimits"]
        return where.get(compound[1], {}).get(compound[2])
    if key.startswith("agents."):
        validate(key, ["{prompt}"])  # checks the name
        name = key[len("agents.") :]
        if name not in eff["agents"]:
            raise JobgateError(f"no agent profile named {name!r}")
        return eff["agents"][name]
    if key not in DEFAULTS:
        validate(key, None)  # raises "unknown config key"
    return eff[key]


def problem(key: str, value: Any, exc: JobgateError) -> str:
    """What is wrong with the stored ``value`` of ``key`` (``exc`` from :func:`validate`)
    and what is used instead, as one line: ``stopReviewGate: bad value 1 (expected true or
    false); using the default false``."""
    import json

    shown = json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    message = exc.message
    prefix = f"bad value for {key}: "
    if not message.startswith(prefix):  # an unknown key or a bad agent name
        return f"{key}: {message}; ignored (jobgate config unset {key} removes it)"
    why = message[len(prefix) :]
    if why.endswith(")") and " (" in why:  # "<value> (expected ...)": the value is shown
        why = why[why.index(" (") + 2 : -1]
    if key in DEFAULTS:
        fallback = f"using the default {json.dumps(DEFAULTS[key])}"
    elif key[len("agents.") :] in BUILTIN_AGENTS:
        fallback = "using the built-in profile"
    else:
        fallback = "ignored"
    return f"{key}: bad value {shown} ({why}); {fallback}"


def problems(stored: dict[str, Any]) -> dict[str, str]:
    """Each stored key whose value cannot be used, with :func:`problem`'s line."""
    found: dict[str, str] = {}
    for key, value in stored.items():
        try:
            validate(key, value)
        except JobgateError as exc:
            found[key] = problem(key, value, exc)
    return found


#: the problems already warned about by this process: each is said once
_WARNED: set[str] = set()


_INVALID = object()


def usable(key: str, value: Any, default: Any) -> Any:
    """The stored ``value`` of ``key`` as jobgate uses it, or ``default`` when it is not
    valid — then with one warning on stderr naming the key (once per process): a
    hand-edited value jobgate cannot use is never silently the default."""
    try:
        return validate(key, value)
    except JobgateError as exc:
        _warn_once(problem(key, value, exc))
        return default


def _warn_once(text: str) -> None:
    if text in _WARNED:
        return
    _WARNED.add(text)
    from jobgate.state.fileio import warn

    warn(f"config.json: {text}")
