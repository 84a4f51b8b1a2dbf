"""Slash commands typed in the prompt of the running app."""

from __future__ import annotations

from gptoss_chat.ui.screens.help_modal import HelpModal
from gptoss_chat.ui.screens.system_prompt_modal import SystemPromptModal
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import (
    ANSWER,
    EchoPythonTool,
    FixedPatchTool,
    build_session,
    finish_turn,
    submit,
)

SIZE = (130, 40)


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_reasoning_tools_and_system(encoding, make_test_app):
    session = build_session(encoding, [ANSWER], tools=[EchoPythonTool()])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "/reasoning low")
        assert session.settings.reasoning == "low"
        await submit(pilot, "/reasoning")
        assert session.settings.reasoning == "medium"
        await submit(pilot, "/reasoning extreme")
        assert session.settings.reasoning == "medium"
        assert any("reasoning must be one of" in n for n in notices(app))
        await submit(pilot, "/tools python off")
        assert "python" not in session.tools.enabled
        await submit(pilot, "/tools python")
        assert "python" in session.tools.enabled
        await submit(pilot, "/tools")
        assert any("Tools: python on" in n for n in notices(app))
        await submit(pilot, "/system Answer in French.")
        assert session.settings.developer_message == "Answer in French."
        await submit(pilot, "hello")
        await finish_turn(pilot)
        assert "Answer in French." in encoding.decode(session.generator.prompts[-1])
        await submit(pilot, "/bogus")
        assert any("unknown command /bogus" in n for n in notices(app))


async def test_system_without_text_opens_the_editor(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "/system")
        assert isinstance(app.screen, SystemPromptModal)
        await pilot.press(*"Be", "space", *"brief", "ctrl+s")
        await pilot.pause()
        assert session.settings.developer_message == "Be brief"


async def test_clear_and_retry(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "/retry")
        assert any("Nothing to regenerate" in n for n in notices(app))
        await submit(pilot, "hello")
        await finish_turn(pilot)
        await submit(pilot, "/retry")
        await finish_turn(pilot)
        assert len(app.query(TurnView)) == 1
        assert len(session.generator.prompts) == 2
        await submit(pilot, "/clear")
        await pilot.pause()
        assert session.entries == []
        assert len(app.query(TurnView)) == 0


async def test_undo_calls_the_patch_tool(encoding, make_test_app):
    patch = FixedPatchTool()
    app = make_test_app(build_session(encoding, [ANSWER], tools=[patch]))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "/undo")
        await pilot.pause(0.2)
        assert patch.undone == 1
        assert any("Reverted the last patch" in n for n in notices(app))


async def test_undo_without_patch_tool_says_so(encoding, make_test_app):
    app = make_test_app(build_session(encoding, [ANSWER]))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "/undo")
        await pilot.pause()
        assert any("needs the apply_patch tool" in n for n in notices(app))


async def test_export_writes_markdown(encoding, make_test_app, tmp_path):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "/export")
        await pilot.pause()
        assert any("Nothing to export" in n for n in notices(app))
        await submit(pilot, "hello")
        await finish_turn(pilot)
        await submit(pilot, "/export chat.md")
        await pilot.pause(0.3)
    text = (tmp_path / "chat.md").read_text()
    assert "## You\n\nhello" in text
    assert "print('hi')" in text
    assert "<summary>Analysis</summary>" in text


async def test_help_and_tab_completion(encoding, make_test_app):
    app = make_test_app(build_session(encoding, [ANSWER]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("/", "h", "e")
        hint = app.query_one("#command-hint")
        assert hint.has_class("-visible") and "/help" in str(hint.render())
        await pilot.press("tab")
        assert app.query_one("#prompt").text == "/help "
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)


async def test_double_slash_sends_a_literal_slash(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "//etc/hosts is a file")
        await finish_turn(pilot)
        assert session.entries[0].message.content[0].text == "/etc/hosts is a file"
