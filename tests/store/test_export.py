"""Export formats and the `gptoss-chat sessions` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_harmony import Conversation, Message, Role

from gptoss_chat.cli import main
from gptoss_chat.export import to_json, to_markdown
from gptoss_chat.locations import sessions_db
from gptoss_chat.store import MessageState, SessionStore
from gptoss_chat.tools.base import tool_message


def conversation() -> list[tuple[Message, MessageState]]:
    assistant = Role.ASSISTANT
    return [
        (Message.from_role_and_content(Role.USER, "What's the weather in Tokyo?"), "complete"),
        (
            Message.from_role_and_content(assistant, "Need the tool.").with_channel("analysis"),
            "complete",
        ),
        (
            Message.from_role_and_content(assistant, '{"location": "Tokyo"}')
            .with_channel("commentary")
            .with_recipient("functions.get_weather")
            .with_content_type("<|constrain|>json"),
            "complete",
        ),
        (tool_message("functions.get_weather", '{"sunny": true}'), "complete"),
        (
            Message.from_role_and_content(assistant, "It is sunny with ``` fences").with_channel(
                "final"
            ),
            "interrupted",
        ),
    ]


@pytest.fixture
def saved_id(user_dirs) -> str:
    with SessionStore(sessions_db()) as store:
        info = store.create(title="Tokyo weather", model="replay")
        for position, (message, state) in enumerate(conversation()):
            store.put_message(info.id, position, message, MessageState(state), {"reasoning": "low"})
        return info.id


def test_json_export_holds_the_harmony_messages(saved_id) -> None:
    with SessionStore(sessions_db()) as store:
        data = json.loads(to_json(store.load(saved_id)))
    assert data["format"] == "gptoss-chat-session" and data["version"] == 1
    assert data["title"] == "Tokyo weather" and data["id"] == saved_id
    messages = [Message.from_dict(item["message"]) for item in data["messages"]]
    assert messages == [message for message, _ in conversation()]
    assert [item["interrupted"] for item in data["messages"]] == [False] * 4 + [True]
    assert data["messages"][0]["settings"] == {"reasoning": "low"}
    Conversation.from_messages(messages)  # valid Harmony as a whole


def test_markdown_export_reads_like_a_chat(saved_id) -> None:
    with SessionStore(sessions_db()) as store:
        text = to_markdown(store.load(saved_id))
    assert text.startswith("# Tokyo weather\n")
    assert "## You\n\nWhat's the weather in Tokyo?" in text
    assert "<details><summary>Reasoning</summary>\n\nNeed the tool." in text
    assert '**Tool call `functions.get_weather`**\n\n```json\n{"location": "Tokyo"}\n```' in text
    assert '**Result of `functions.get_weather`**\n\n```\n{"sunny": true}\n```' in text
    assert "## Assistant\n\nIt is sunny with ``` fences\n\n*(interrupted)*" in text


def test_sessions_command(saved_id, tmp_path: Path, capsys) -> None:
    assert main(["sessions", "list"]) == 0
    listing = capsys.readouterr().out
    assert saved_id in listing and "Tokyo weather" in listing and "5 msg" in listing

    assert main(["sessions", "rename", saved_id[:4], "Weather check"]) == 0
    assert "Weather check" in capsys.readouterr().out

    out_file = tmp_path / "out.json"
    assert main(["sessions", "export", saved_id, "--format", "json", "-o", str(out_file)]) == 0
    assert json.loads(out_file.read_text())["title"] == "Weather check"
    capsys.readouterr()

    assert main(["sessions", "export", "last", "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Weather check")
    assert main(["sessions", "show"]) == 0
    assert "## Assistant" in capsys.readouterr().out

    assert main(["sessions", "delete", saved_id]) == 0
    capsys.readouterr()
    assert main(["sessions", "show", saved_id]) == 1
    assert f"no saved session {saved_id!r}" in capsys.readouterr().err
    assert main(["sessions", "list"]) == 0
    assert "no saved sessions yet" in capsys.readouterr().out
