"""The Markdown export of a conversation (the TUI's /export)."""

from __future__ import annotations

import asyncio

import pytest

from gptoss_chat.export_markdown import conversation_markdown
from gptoss_chat.settings import ChatSettings
from tests.ui.conftest import AFTER_TOOL, PYTHON_CALL, EchoPythonTool, build_session


@pytest.fixture
def encoding(harmony_encoding):
    return harmony_encoding


async def _approve(proposal):
    from gptoss_chat.tools.base import Decision

    return Decision.approve()


def test_export_has_every_part_of_a_tool_turn(encoding):
    settings = ChatSettings(developer_message="Be brief.")
    session = build_session(
        encoding, [PYTHON_CALL, AFTER_TOOL], tools=[EchoPythonTool()], settings=settings
    )
    session.approver = _approve

    async def drive():
        async for _ in session.send("what is 6 x 7?"):
            pass

    asyncio.run(drive())
    text = conversation_markdown(session)
    assert text.startswith("# gptoss-chat conversation\n")
    assert "- instructions: Be brief." in text
    assert "## You\n\nwhat is 6 x 7?" in text
    assert "<details><summary>Analysis</summary>\n\n> I will compute it with python." in text
    assert "### Tool call to `python`\n\n```python\nprint(6 * 7)\n```" in text
    assert "### Result from `python`\n\n```\n42\n```" in text
    assert text.rstrip().endswith("## Assistant\n\nThe answer is **42**.")


def test_fence_grows_past_backticks_in_the_text(encoding):
    from gptoss_chat.export_markdown import _fence

    assert _fence("a ``` b").startswith("````\n")
