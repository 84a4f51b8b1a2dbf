"""The slash-command table: parsing, completion and hints."""

from __future__ import annotations

import pytest

from gptoss_chat.ui.slash_commands import (
    SlashCommandError,
    completions,
    hint,
    is_command,
    parse_command,
)


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        ("/reasoning high", "reasoning", "high"),
        ("/tools  python   off ", "tools", "python   off"),
        ("/CLEAR", "clear", ""),
        ("/exp notes.md", "export", "notes.md"),  # a unique prefix is enough
        ("/system Be brief.", "system", "Be brief."),
    ],
)
def test_parse(text, name, argument):
    parsed = parse_command(text)
    assert (parsed.name, parsed.argument) == (name, argument)


@pytest.mark.parametrize("text", ["/re", "/nope", "/"])
def test_parse_rejects_unknown_or_ambiguous(text):
    with pytest.raises(SlashCommandError, match="commands: /reasoning"):
        parse_command(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/re", ["/reasoning ", "/retry "]),
        ("/he", ["/help "]),
        ("/reasoning h", ["/reasoning high"]),
        ("/tools p", ["/tools python"]),
        ("/tools python o", []),
        ("hello", []),
        ("//not a command", []),
        ("/re\nmore", []),
    ],
)
def test_completions(text, expected):
    assert completions(text) == expected


def test_is_command_and_escape():
    assert is_command("/help")
    assert not is_command("//help")
    assert not is_command("help")


def test_hint_shows_usage():
    assert "/reasoning [low|medium|high]" in hint("/rea")
    assert "set the reasoning effort" in hint("/reasoning ")
    assert hint("/zzz").startswith("no such command")
    assert hint("plain text") == ""
