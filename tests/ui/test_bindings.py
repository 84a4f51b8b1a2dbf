"""Every key of the chat screen, driven through Pilot against a real ChatSession."""

from __future__ import annotations

from gptoss_chat.settings import ChatSettings
from gptoss_chat.ui.screens.help_modal import HelpModal
from gptoss_chat.ui.widgets.status_bar import StatusBar
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import (
    AFTER_TOOL,
    ANSWER,
    PYTHON_CALL,
    EchoPythonTool,
    FixedPatchTool,
    GatedReplay,
    build_session,
    finish_turn,
    submit,
    wait_until,
)

SIZE = (130, 40)


def last_prompt_text(session) -> str:
    return session.encoding.decode(session.generator.prompts[-1])


async def test_enter_sends_and_turn_renders_analysis_beside_answer(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"hi", "enter")
        await finish_turn(pilot)
        turn = app.query_one(TurnView)
        assert "print('hi')" in turn.answer_text
        assert "greet back" in turn.analysis.markdown.full_text
        # Wide terminal: the analysis pane sits to the left of the answer column.
        assert turn.analysis.region.y == turn.answer.region.y
        assert turn.analysis.region.right <= turn.answer.region.x
        assert session.last_final_text().startswith("Hello!")


async def test_narrow_terminal_puts_analysis_above(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.press(*"hi", "enter")
        await finish_turn(pilot)
        turn = app.query_one(TurnView)
        assert turn.analysis.region.bottom <= turn.answer.region.y


async def test_ctrl_j_inserts_newline_instead_of_sending(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "ctrl+j", "b")
        assert app.chat_screen.query_one("#prompt").text == "a\nb"
        assert session.entries == []
        await pilot.press("enter")
        await finish_turn(pilot)
        assert session.entries[0].message.content[0].text == "a\nb"


async def test_toggle_tools_between_turns(encoding, make_test_app):
    python = EchoPythonTool()
    session = build_session(encoding, [ANSWER], tools=[python, FixedPatchTool()])
    session.tools.set_enabled("python", False)
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "first")
        await finish_turn(pilot)
        assert "## python" not in last_prompt_text(session)
        await pilot.press("ctrl+t")  # python on
        await pilot.press("ctrl+n")  # apply_patch off
        status = app.query_one(StatusBar)
        assert status.tools == (("python", True), ("apply_patch", False))
        await submit(pilot, "second")
        await finish_turn(pilot)
        prompt = last_prompt_text(session)
        assert "## python" in prompt
        assert "apply_patch" not in prompt
        await pilot.press("ctrl+b")  # no browser in this registry: a notice, no crash
        assert any("browser tool is not available" in n.message for n in app._notifications)


async def test_cycle_reasoning_changes_next_prompt(encoding, make_test_app):
    session = build_session(encoding, [ANSWER], settings=ChatSettings(reasoning="medium"))
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        assert session.settings.reasoning == "high"
        assert app.query_one(StatusBar).reasoning == "high"
        await submit(pilot, "think hard")
        await finish_turn(pilot)
        assert "Reasoning: high" in last_prompt_text(session)
        await pilot.press("ctrl+r")
        assert session.settings.reasoning == "low"


async def test_collapse_analysis_globally_and_per_turn(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "one")
        await finish_turn(pilot)
        first = app.query_one(TurnView)
        assert not first.analysis.collapsed
        await pilot.press("ctrl+o")
        assert first.analysis.collapsed
        await submit(pilot, "two")
        await finish_turn(pilot)
        second = app.query(TurnView).last()
        assert second.analysis.collapsed  # new turns follow the global state
        await pilot.click(second.analysis.query_one("CollapsibleTitle"))
        assert not second.analysis.collapsed and first.analysis.collapsed
        await pilot.press("ctrl+o")
        assert not first.analysis.collapsed and not second.analysis.collapsed


async def test_stop_mid_stream_with_escape(encoding, make_test_app):
    script = encoding.encode(ANSWER, allowed_special="all")
    generator = GatedReplay([script], pause_after=7)
    session = build_session(encoding, [], generator=generator)
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await wait_until(pilot, generator.paused.is_set)
        analysis = app.query_one(TurnView).analysis.markdown
        await wait_until(pilot, lambda: "greet" in analysis.full_text)
        assert app.chat_screen.busy
        await pilot.press("escape")
        await finish_turn(pilot)
        assert not session.busy
        assert session.entries[-1].interrupted
        assert generator.last_stats.stop_reason == "cancelled"
        footer = app.query_one(".turn-footer")
        assert "stopped" in str(footer.render())


async def test_regenerate_replaces_the_last_answer(encoding, make_test_app):
    second = ANSWER.replace("Hello!", "Hi again!")
    session = build_session(encoding, [ANSWER, second])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hello")
        await finish_turn(pilot)
        await pilot.press("ctrl+g")
        await finish_turn(pilot)
        turns = app.query(TurnView)
        assert len(turns) == 1
        assert turns.first().answer_text.startswith("Hi again!")
        assert session.last_final_text().startswith("Hi again!")


async def test_copy_last_answer(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        assert app.clipboard == ""
        await submit(pilot, "hello")
        await finish_turn(pilot)
        await pilot.press("ctrl+l")
        assert app.clipboard == session.last_final_text() != ""


async def test_help_key_lists_bindings(encoding, make_test_app):
    app = make_test_app(build_session(encoding, [ANSWER]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpModal)
        assert any("reasoning effort" in text for _, text in app.screen.keys)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpModal)


async def test_keymap_remaps_a_binding(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])
    app = make_test_app(session, keymap={"chat.cycle_reasoning": "f5"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        assert session.settings.reasoning == "medium"
        await pilot.press("f5")
        assert session.settings.reasoning == "high"


async def test_history_recalls_across_sessions(encoding, make_test_app, tmp_path):
    history = tmp_path / "h.jsonl"
    first = make_test_app(build_session(encoding, [ANSWER]), history_path=history)
    async with first.run_test(size=SIZE) as pilot:
        await submit(pilot, "remember me")
        await finish_turn(pilot)
    second = make_test_app(build_session(encoding, [ANSWER]), history_path=history)
    async with second.run_test(size=SIZE) as pilot:
        await pilot.press("up")
        assert second.chat_screen.query_one("#prompt").text == "remember me"
        await pilot.press("down")
        assert second.chat_screen.query_one("#prompt").text == ""


async def test_palette_lists_every_action(encoding, make_test_app):
    from gptoss_chat.ui.screens.chat_screen import ChatScreen

    app = make_test_app(build_session(encoding, [ANSWER]))
    async with app.run_test(size=SIZE):
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for binding in ChatScreen.BINDINGS:
            assert binding.description in titles
        assert {"/clear", "/export", "/undo", "Reasoning: high"} <= titles


async def test_tool_turn_without_approval_when_policy_allows(encoding, make_test_app):
    from gptoss_chat.settings import ApprovalPolicy

    python = EchoPythonTool()
    settings = ChatSettings(approval={"python": ApprovalPolicy.ALWAYS})
    session = build_session(encoding, [PYTHON_CALL, AFTER_TOOL], tools=[python], settings=settings)
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "compute")
        await finish_turn(pilot)
        assert python.runs == ["print(6 * 7)"]
        block = app.query_one(".tool-block")
        assert "done" in block.title


async def test_paste_keeps_newlines_and_does_not_send(encoding, make_test_app):
    from textual import events

    session = build_session(encoding, [ANSWER])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.chat_screen.query_one("#prompt")
        app.post_message(events.Paste("line one\nline two"))  # as the terminal driver does
        await pilot.pause()
        assert prompt.text == "line one\nline two"
        assert session.entries == []


async def test_help_shows_remapped_keys(encoding, make_test_app):
    app = make_test_app(build_session(encoding, [ANSWER]), keymap={"chat.regenerate": "f9"})
    async with app.run_test(size=SIZE):
        rows = dict((text, key) for key, text in app.key_help())
        assert rows["Answer the last message again"] == "f9"
        assert rows["Leave gptoss-chat"] == "^q"
