"""Agent profiles (pure): placeholder filling, profile resolution, messages, names."""

from __future__ import annotations

import pytest

from jobgate.agents import profiles as agents
from jobgate.state import config
from jobgate.state.errors import JobgateError

NASTY = "fix \"it\"; $(rm -rf /) `id` 'q' \\n\nsecond line\t* {prompt} {lastMessageFile}"


def test_exact_prompt_element_becomes_the_prompt_unchanged() -> None:
    argv = agents.expand(["prog", "--x", "{prompt}"], NASTY)
    assert argv == ["prog", "--x", NASTY]


def test_prompt_is_spliced_into_an_element_with_other_text() -> None:
    argv = agents.expand(["prog", "--task={prompt}!"], "a b")
    assert argv == ["prog", "--task=a b!"]


def test_placeholders_inside_the_prompt_are_never_expanded() -> None:
    argv = agents.expand(["prog", "-o", "{lastMessageFile}", "p:{prompt}"], NASTY, "/s/f")
    assert argv == ["prog", "-o", "/s/f", "p:" + NASTY]


def test_last_message_placeholder_without_a_path_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        agents.expand(["prog", "{lastMessageFile}", "{prompt}"], "x")


def test_builtin_codex_writes_its_final_message_to_the_job_result_file() -> None:
    cmd = agents.build(config.BUILTIN_AGENTS, "codex", "-v review", "/state/jobs/f.last-message")
    assert cmd.argv[:2] == ("codex", "exec")
    assert "--skip-git-repo-check" in cmd.argv
    i = cmd.argv.index("--output-last-message")
    assert cmd.argv[i + 1] == "/state/jobs/f.last-message"
    # "--" keeps a prompt that looks like a flag or a subcommand a prompt
    assert cmd.argv[-2:] == ("--", "-v review")
    assert cmd.result_file == "/state/jobs/f.last-message"
    assert cmd.program == "codex"


def test_builtin_claude_prints_its_answer_as_json_so_it_has_no_result_file() -> None:
    cmd = agents.build(config.BUILTIN_AGENTS, "claude", "hi", "/unused")
    assert cmd.argv == ("claude", "-p", "--output-format", "json", "hi")
    assert cmd.result_file is None


def test_profile_that_needs_a_result_file_cannot_be_built_without_one() -> None:
    with pytest.raises(ValueError):
        agents.build(config.BUILTIN_AGENTS, "codex", "x")


def test_unknown_profile_names_the_known_ones_and_how_to_add_it() -> None:
    with pytest.raises(JobgateError) as err:
        agents.profile(config.BUILTIN_AGENTS, "gemini")
    assert "'gemini'" in err.value.message
    assert "claude, codex" in err.value.message
    assert "jobgate config set agents.gemini" in err.value.message


def test_profile_must_start_with_a_program_not_a_placeholder() -> None:
    with pytest.raises(JobgateError):
        agents.profile({"bad": ["{prompt}"]}, "bad")
    with pytest.raises(JobgateError):
        agents.profile({"bad": ["{lastMessageFile}", "{prompt}"]}, "bad")


def test_profile_without_prompt_placeholder_is_refused() -> None:
    with pytest.raises(JobgateError):
        agents.profile({"bad": ["prog", "--x"]}, "bad")


def test_missing_program_message_is_one_line_with_install_and_config_hints() -> None:
    msg = agents.missing_program_message("codex", "codex", config.BUILTIN_AGENTS["codex"])
    assert "\n" not in msg
    assert "'codex'" in msg and "PATH" in msg
    assert "npm install -g @openai/codex" in msg
    assert 'jobgate config set agents.codex \'["/path/to/codex", "exec"' in msg
    msg = agents.missing_program_message("claude", "claude", config.BUILTIN_AGENTS["claude"])
    assert "npm install -g @anthropic-ai/claude-code" in msg


def test_missing_program_message_for_a_custom_path_has_no_npm_hint() -> None:
    msg = agents.missing_program_message("mine", "/opt/x/mine", ["/opt/x/mine", "{prompt}"])
    assert "'/opt/x/mine'" in msg and "npm" not in msg and "PATH" not in msg
    assert "jobgate config set agents.mine" in msg


def test_empty_or_blank_prompt_is_refused() -> None:
    for prompt in ("", "  \n\t"):
        with pytest.raises(JobgateError):
            agents.check_prompt(prompt)
    with pytest.raises(JobgateError):
        agents.check_prompt("a\x00b")
    assert agents.check_prompt(" keep  as is \n") == " keep  as is \n"


def test_default_name_is_agent_and_start_of_first_nonblank_line() -> None:
    assert agents.default_name("codex", "\n\n  fix   the\ttests \nmore") == "codex: fix the tests"
    long = agents.default_name("claude", "x" * 200)
    assert long.startswith("claude: x") and long.endswith("…")
    assert len(long) == len("claude: ") + agents.NAME_LIMIT
    assert agents.default_name("codex", "   ") == "codex"


def test_every_builtin_profile_passes_config_validation() -> None:
    for name, template in config.BUILTIN_AGENTS.items():
        assert config.validate(f"agents.{name}", template) == template
        agents.profile(config.BUILTIN_AGENTS, name)


def test_optional_placeholders_vanish_with_their_flag_when_not_given() -> None:
    template = ["prog", "-q", "--model", "{model}", "--config=effort={effort}", "{prompt}"]
    assert agents.expand(template, "p") == ["prog", "-q", "p"]
    filled = agents.expand(template, "p", options={"model": "o3", "effort": "high"})
    assert filled == ["prog", "-q", "--model", "o3", "--config=effort=high", "p"]
    # a placeholder that is not alone in its element goes alone: "-q" stays
    assert agents.expand(["prog", "-q", "--m={model}", "{prompt}"], "p") == ["prog", "-q", "p"]
    # a value is never scanned for other placeholders
    odd = agents.expand(template, "p", options={"model": "{effort}", "effort": None})
    assert odd == ["prog", "-q", "--model", "{effort}", "p"]


def test_builtin_profiles_take_model_and_effort_and_drop_them_when_not_given() -> None:
    bare = agents.build(config.BUILTIN_AGENTS, "codex", "x", "/f")
    assert "--model" not in bare.argv and not any("effort" in a for a in bare.argv)
    opts = {"model": "o3", "effort": "low"}
    codex = agents.build(config.BUILTIN_AGENTS, "codex", "x", "/f", options=opts)
    assert codex.argv[codex.argv.index("--model") + 1] == "o3"
    assert "--config=model_reasoning_effort=low" in codex.argv
    claude = agents.build(config.BUILTIN_AGENTS, "claude", "x", options=opts)
    assert claude.argv[-5:] == ("--model", "o3", "--effort", "low", "x")


def test_an_option_a_profile_cannot_take_is_refused_not_ignored() -> None:
    with pytest.raises(JobgateError) as err:
        agents.build({"mine": ["prog", "{prompt}"]}, "mine", "x", options={"model": "o3"})
    assert "no {model} placeholder" in err.value.message
    assert "jobgate config set agents.mine" in err.value.message
    for bad in ("", " ", "-x"):
        with pytest.raises(JobgateError):
            agents.build(config.BUILTIN_AGENTS, "claude", "x", options={"effort": bad})


def test_resume_templates_continue_the_session_with_the_profiles_program() -> None:
    codex = agents.build(config.BUILTIN_AGENTS, "codex", "-v go", "/f", session_id="abc")
    assert codex.argv[:3] == ("codex", "exec", "resume")
    assert codex.argv[-3:] == ("--", "abc", "-v go") and "--sandbox" not in codex.argv
    assert codex.result_file == "/f"
    claude = agents.build(config.BUILTIN_AGENTS, "claude", "go", session_id="abc")
    assert claude.argv == ("claude", "-p", "--resume", "abc", "--output-format", "json", "go")
    mine = {**config.BUILTIN_AGENTS, "claude": ["/opt/claude", "-p", "{prompt}"]}
    assert agents.build(mine, "claude", "go", session_id="abc").argv[0] == "/opt/claude"
    with pytest.raises(JobgateError) as err:
        agents.build({"mine": ["prog", "{prompt}"]}, "mine", "go", session_id="abc")
    assert "no way to continue a session" in err.value.message


def test_interactive_resume_commands_of_the_known_formats() -> None:
    assert agents.interactive_resume("codex", "abc") == ["codex", "resume", "abc"]
    assert agents.interactive_resume("claude", "abc") == ["claude", "--resume", "abc"]
    assert agents.interactive_resume("other", "abc") is None
    assert agents.thread_format(["/usr/local/bin/codex", "{prompt}"]) == "codex"
    assert agents.thread_format(["my-agent", "{prompt}"]) is None
