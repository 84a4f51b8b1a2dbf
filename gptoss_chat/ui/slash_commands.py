"""Slash commands typed in the prompt: the table, parsing and completion (no Textual here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SlashCommand:
    name: str
    """Without the slash: 'reasoning'."""
    usage: str
    help: str
    arguments: tuple[str, ...] = ()
    """Completions for the first argument."""


SLASH_COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand(
        "reasoning",
        "/reasoning [low|medium|high]",
        "set the reasoning effort (no argument: next level)",
        ("low", "medium", "high"),
    ),
    SlashCommand(
        "tools",
        "/tools [NAME [on|off]]",
        "list tools, or switch one (no on/off: toggle)",
        ("browser", "python", "apply_patch"),
    ),
    SlashCommand(
        "system",
        "/system [TEXT]",
        "set the developer instructions (no text: edit them)",
    ),
    SlashCommand("clear", "/clear", "start a new conversation"),
    SlashCommand("retry", "/retry", "answer the last message again"),
    SlashCommand("undo", "/undo", "revert the last patch apply_patch applied"),
    SlashCommand(
        "export",
        "/export [FILE|md|json]",
        "write the conversation as Markdown, or JSON when FILE ends in .json",
        ("md", "json"),
    ),
    SlashCommand("sessions", "/sessions", "saved sessions: resume, rename, delete, export"),
    SlashCommand("help", "/help", "keys and commands"),
)
_BY_NAME = {command.name: command for command in SLASH_COMMANDS}


@dataclass(frozen=True)
class ParsedCommand:
    name: str
    argument: str
    """Everything after the command name, stripped."""


class SlashCommandError(ValueError):
    """The text starts with '/' but names no command."""


def is_command(text: str) -> bool:
    """A message starting with '/' is a command; '//' escapes a literal slash."""
    return text.startswith("/") and not text.startswith("//")


def parse_command(text: str) -> ParsedCommand:
    """'/tools python off' → ParsedCommand('tools', 'python off'); SlashCommandError if unknown."""
    body = text.strip()[1:]
    name, _, argument = body.partition(" ")
    name = name.lower()
    if name not in _BY_NAME:
        matches = [c.name for c in SLASH_COMMANDS if c.name.startswith(name)] if name else []
        if len(matches) == 1:
            name = matches[0]
        else:
            known = ", ".join(f"/{c.name}" for c in SLASH_COMMANDS)
            raise SlashCommandError(f"unknown command /{name}; commands: {known}")
    return ParsedCommand(name, argument.strip())


def completions(text: str) -> list[str]:
    """Full-text completions of a partly typed command, for Tab and the hint line.

    '/re' → ['/reasoning ', '/retry ']; '/reasoning h' → ['/reasoning high'].
    """
    if not is_command(text) or "\n" in text:
        return []
    body = text[1:]
    if " " not in body:
        return [f"/{c.name} " for c in SLASH_COMMANDS if c.name.startswith(body.lower())]
    name, _, rest = body.partition(" ")
    command = _BY_NAME.get(name.lower())
    if command is None or " " in rest:
        return []
    return [f"/{command.name} {arg}" for arg in command.arguments if arg.startswith(rest.lower())]


def hint(text: str) -> str:
    """The line shown above the prompt while a command is being typed."""
    if not is_command(text) or "\n" in text:
        return ""
    body = text[1:]
    name = body.partition(" ")[0].lower()
    if " " in body and name in _BY_NAME:
        command = _BY_NAME[name]
        return f"{command.usage}  —  {command.help}"
    matches = [c for c in SLASH_COMMANDS if c.name.startswith(name)]
    if not matches:
        return "no such command (/help lists them)"
    return "   ".join(c.usage for c in matches)
