"""A saved session as Markdown (to read or share) or JSON (Harmony messages, to process).

JSON layout (version 1):

    {"format": "gptoss-chat-session", "version": 1, "id": ..., "title": ..., "model": ...,
     "created_at": ISO-8601, "updated_at": ISO-8601,
     "messages": [{"message": <Harmony message dict>, "interrupted": bool,
                   "settings": {...}, "created_at": ISO-8601}, ...]}

`openai_harmony.Message.from_dict(item["message"])` rebuilds each message.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from openai_harmony import Message, Role

from gptoss_chat.conversation import message_text
from gptoss_chat.store import SavedSession

EXPORT_FORMATS = ("md", "json")


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def to_json(saved: SavedSession) -> str:
    info = saved.info
    data: dict[str, Any] = {
        "format": "gptoss-chat-session",
        "version": 1,
        "id": info.id,
        "title": info.title,
        "model": info.model,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "messages": [
            {
                "message": json.loads(stored.message.to_json()),
                "interrupted": stored.interrupted,
                "settings": stored.settings,
                "created_at": iso(stored.created_at),
            }
            for stored in saved.messages
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_markdown(saved: SavedSession) -> str:
    info = saved.info
    lines = [f"# {info.display_title}", ""]
    meta = f"session `{info.id}` · started {iso(info.created_at)}"
    if info.model:
        meta += f" · {info.model}"
    lines += [f"*{meta}*", ""]
    for stored in saved.messages:
        lines += _message_markdown(stored.message, stored.interrupted)
    return "\n".join(lines).rstrip() + "\n"


def render(saved: SavedSession, fmt: str) -> str:
    if fmt == "json":
        return to_json(saved)
    if fmt == "md":
        return to_markdown(saved)
    raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")


def _fence(text: str, language: str = "") -> list[str]:
    """A code fence longer than any backtick run inside the text."""
    ticks = "`" * max(3, _longest_backtick_run(text) + 1)
    return [f"{ticks}{language}", text.rstrip("\n"), ticks]


def _longest_backtick_run(text: str) -> int:
    best = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        best = max(best, run)
    return best


def _message_markdown(message: Message, interrupted: bool) -> list[str]:
    text = message_text(message)
    role = message.author.role
    mark = ["", "*(interrupted)*"] if interrupted else []
    if role == Role.USER:
        return ["## You", "", text, *mark, ""]
    if role == Role.TOOL:
        name = message.author.name or "tool"
        return [f"**Result of `{name}`**", "", *_fence(text), ""]
    if role != Role.ASSISTANT:
        return [f"## {role.value.capitalize()}", "", text, ""]
    recipient = message.recipient
    if recipient and recipient != "assistant":
        language = "json" if "json" in (message.content_type or "") else ""
        if recipient == "python":
            language = "python"
        return [f"**Tool call `{recipient}`**", "", *_fence(text, language), *mark, ""]
    if message.channel == "analysis":
        return [
            "<details><summary>Reasoning</summary>",
            "",
            text,
            *mark,
            "",
            "</details>",
            "",
        ]
    return ["## Assistant", "", text, *mark, ""]
