"""A model's apply_patch call, from Harmony tokens to the tool message it gets back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_harmony import Conversation, DeveloperContent, Message, Role

from gptoss_chat.tools.apply_patch import ApplyPatchTool
from gptoss_chat.tools.base import ToolCall, ToolCallError, ToolRegistry

PATCH = (
    "*** Begin Patch\n*** Update File: hello.py\n@@\n-print('hi')\n+print('hello')\n*** End Patch"
)


def model_call(encoding, arguments: str, content_type: str | None) -> tuple[Message, ToolCall]:
    """Render the call the model would emit, parse it back from tokens, as the core does."""
    message = (
        Message.from_role_and_content(Role.ASSISTANT, arguments)
        .with_channel("commentary")
        .with_recipient("functions.apply_patch")
    )
    if content_type:
        message = message.with_content_type(content_type)
    [parsed] = encoding.parse_messages_from_completion_tokens(encoding.render(message), None)
    call = ToolCall(
        recipient=parsed.recipient,
        arguments=parsed.content[0].text,
        channel=parsed.channel,
        content_type=parsed.content_type,
    )
    return parsed, call


@pytest.mark.parametrize(
    ("arguments", "content_type"),
    [
        (PATCH, None),
        (json.dumps(PATCH), "<|constrain|>json"),
        (json.dumps({"patch": PATCH}), "json"),
    ],
)
def test_call_from_tokens_to_tool_message(
    harmony_encoding, tmp_path: Path, arguments: str, content_type: str | None
) -> None:
    (tmp_path / "hello.py").write_text("print('hi')\n")
    tool = ApplyPatchTool(tmp_path)
    registry = ToolRegistry()
    registry.add(tool)
    assistant, call = model_call(harmony_encoding, arguments, content_type)

    handler = registry.for_recipient(call.recipient)
    assert handler is tool
    result = tool.run(tool.propose(call))

    assert (tmp_path / "hello.py").read_text() == "print('hello')\n"
    developer = DeveloperContent.new().with_function_tools(tool.function_descriptions())
    conversation = Conversation.from_messages(
        [
            Message.from_role_and_content(Role.DEVELOPER, developer),
            Message.from_role_and_content(Role.USER, "greet properly"),
            assistant,
            *result.messages,
        ]
    )
    rendered = harmony_encoding.decode(
        harmony_encoding.render_conversation_for_completion(conversation, Role.ASSISTANT)
    )
    assert rendered.endswith(
        "<|start|>functions.apply_patch to=assistant<|channel|>commentary<|message|>"
        "Done!\nM hello.py (+1 -1)<|end|><|start|>assistant"
    )


def test_a_bad_call_becomes_an_error_the_model_can_read(harmony_encoding, tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text("print('bye')\n")
    _, call = model_call(harmony_encoding, PATCH, None)
    with pytest.raises(ToolCallError) as error:
        ApplyPatchTool(tmp_path).propose(call)
    assert "hello.py: hunk 1 (patch line 3): could not find these lines:\n  print('hi')" in str(
        error.value
    )
