"""The browser's config and tool messages render as Harmony the model reads."""

from __future__ import annotations

import json

import pytest
from openai_harmony import (
    Conversation,
    HarmonyEncoding,
    Message,
    Role,
    SystemContent,
)

from gptoss_chat.tools.base import ToolCall
from gptoss_chat.tools.browser.backends import KeylessBackend
from gptoss_chat.tools.browser.tool import BrowserTool


@pytest.fixture(scope="module")
def encoding(harmony_encoding: HarmonyEncoding) -> HarmonyEncoding:
    return harmony_encoding


def test_system_message_declares_the_browser_namespace(
    encoding: HarmonyEncoding, keyless: KeylessBackend
) -> None:
    tool = BrowserTool(keyless)
    system = SystemContent.new().with_tools(tool.system_config())
    conversation = Conversation.from_messages([Message.from_role_and_content(Role.SYSTEM, system)])
    text = encoding.decode(encoding.render_conversation(conversation))
    assert "namespace browser {" in text
    assert "type open = (_: {" in text and "type find = (_: {" in text
    assert "Cite information from the tool using the following format:" in text


def test_a_tool_round_trip_renders_and_parses(
    encoding: HarmonyEncoding, keyless: KeylessBackend, site: str
) -> None:
    tool = BrowserTool(keyless)
    arguments = json.dumps({"id": f"{site}/article.html"})
    call = Message.from_role_and_content(Role.ASSISTANT, arguments)
    call = call.with_channel("commentary").with_recipient("browser.open")
    call = call.with_content_type("<|constrain|>json")
    result = tool.run(tool.propose(ToolCall("browser.open", arguments)))
    messages = [Message.from_role_and_content(Role.USER, "tides?"), call, *result.messages]
    tokens = encoding.render_conversation(Conversation.from_messages(messages))
    text = encoding.decode(tokens)
    assert "<|start|>browser.open to=assistant<|channel|>commentary<|message|>[0] Harmony" in text
    parsed = encoding.parse_messages_from_completion_tokens(tokens, role=Role.USER)
    assert parsed[-1].author.name == "browser.open"
    assert parsed[-1].content[0].text == result.messages[0].content[0].text
