"""The conversation as a Markdown document (the TUI's /export; no Textual here)."""

from __future__ import annotations

from openai_harmony import Message, Role

from gptoss_chat.conversation import ChatSession, message_text


def _fence(text: str, language: str = "") -> str:
    """A code fence longer than any backtick run inside `text`."""
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def message_markdown(message: Message, *, interrupted: bool = False) -> str:
    role = message.author.role
    text = message_text(message)
    note = " *(interrupted)*" if interrupted else ""
    if role == Role.USER:
        return f"## You\n\n{text}"
    if role == Role.TOOL:
        author = message.author.name or "tool"
        return f"### Result from `{author}`\n\n{_fence(text)}"
    if role != Role.ASSISTANT:
        return ""
    if message.recipient and message.recipient != "assistant":
        language = "python" if message.recipient == "python" else ""
        return f"### Tool call to `{message.recipient}`{note}\n\n{_fence(text, language)}"
    if message.channel == "analysis":
        quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
        return f"<details><summary>Analysis{note}</summary>\n\n{quoted}\n\n</details>"
    return f"## Assistant{note}\n\n{text}"


def conversation_markdown(session: ChatSession, *, title: str = "gptoss-chat conversation") -> str:
    settings = session.settings
    header = [
        f"# {title}",
        "",
        f"- model: {getattr(session.generator, 'name', 'unknown')}",
        f"- reasoning: {settings.reasoning}",
        f"- date: {session.start_date}",
    ]
    if settings.developer_message:
        header.append(f"- instructions: {settings.developer_message}")
    parts = ["\n".join(header)]
    for entry in session.entries:
        block = message_markdown(entry.message, interrupted=entry.interrupted)
        if block:
            parts.append(block)
    return "\n\n".join(parts) + "\n"
