"""The TUI and the sessions store together: saving, --resume, /clear, the sessions screen,
/export json, and the config's keymap and theme."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from openai_harmony import Author, Message, Role

from gptoss_chat import locations
from gptoss_chat.config import load_config
from gptoss_chat.factory import LaunchOptions
from gptoss_chat.generator import ReplayGenerator
from gptoss_chat.store import MessageState, SessionStore
from gptoss_chat.ui.app import GptossChatApp, default_history_path, make_app
from gptoss_chat.ui.screens.sessions_screen import ConfirmModal, SessionsScreen, TextPromptModal
from gptoss_chat.ui.widgets.chat_log import UserMessage
from gptoss_chat.ui.widgets.tool_block import ToolBlock
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import AFTER_TOOL, ANSWER, finish_turn, submit, type_text, wait_until

SIZE = (130, 40)
SECOND = (
    "<|channel|>analysis<|message|>They want more.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>More, then.<|return|>"
)


def loading_app(encoding, completions: list[str], tmp_path: Path, **fields) -> GptossChatApp:
    """The app as the CLI builds it: no session given, the model 'loads' in the worker."""
    options = fields.pop("options", None) or LaunchOptions(workspace=tmp_path, **fields)

    def load_model(options, enc, progress=None):
        scripts = [enc.encode(c, allowed_special="all") for c in completions]
        return ReplayGenerator(scripts, name="replay (sessions test)")

    return make_app(
        options,
        history_path=None,
        load_encoding=lambda o: encoding,
        load_model=load_model,
    )


async def ready(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.session is not None)
    await pilot.pause()


def stored_roles(session_id: str | None = None) -> list[tuple[str, str | None]]:
    with SessionStore.open_default() as store:
        saved = store.load(session_id or "last")
    return [(m.message.author.role.value, m.message.channel) for m in saved.messages]


def user(text: str) -> Message:
    return Message.from_role_and_content(Role.USER, text)


def assistant(text: str, channel: str, recipient: str | None = None) -> Message:
    message = Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)
    return message.with_recipient(recipient) if recipient else message


def store_session(title: str, messages: list[tuple[Message, MessageState]], model="m") -> str:
    with SessionStore.open_default() as store:
        info = store.create(title=title, model=model)
        for position, (message, state) in enumerate(messages):
            store.put_message(info.id, position, message, state, {})
        return info.id


async def test_every_message_of_a_tui_chat_is_stored(encoding, tmp_path):
    app = loading_app(encoding, [ANSWER], tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.recorder is not None
        await submit(pilot, "hello there")
        await finish_turn(pilot)
        session_id = app.recorder.session_id
        app.close_resources()
    assert session_id is not None
    assert stored_roles(session_id) == [
        ("user", None),
        ("assistant", "analysis"),
        ("assistant", "final"),
    ]
    with SessionStore.open_default() as store:
        assert store.find(session_id).title == "hello there"


async def test_resume_shows_the_stored_chat_and_continues_it(encoding, tmp_path):
    first = loading_app(encoding, [ANSWER], tmp_path)
    async with first.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await submit(pilot, "hello there")
        await finish_turn(pilot)
        session_id = first.recorder.session_id
        first.close_resources()

    app = loading_app(encoding, [SECOND], tmp_path, resume="last")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_until(pilot, lambda: bool(app.query(TurnView)))
        assert [str(m.render()) for m in app.query(UserMessage)] == ["hello there"]
        turn = app.query_one(TurnView)
        assert "greets me" in turn.analysis.markdown.full_text
        assert "Anything else?" in turn.answer_text
        assert app.recorder.session_id == session_id
        await submit(pilot, "and more?")
        await finish_turn(pilot)
        assert len(app.query(TurnView)) == 2
        app.close_resources()
    assert len(stored_roles(session_id)) == 6


async def test_resume_draws_tool_blocks_and_marks_an_interrupted_answer(encoding, tmp_path):
    tool_result = Message.from_author_and_content(Author.new(Role.TOOL, "python"), "42\n")
    session_id = store_session(
        "tool chat",
        [
            (user("compute 6*7"), MessageState.COMPLETE),
            (assistant("I will use python.", "analysis"), MessageState.COMPLETE),
            (assistant("print(6 * 7)", "analysis", "python"), MessageState.COMPLETE),
            (tool_result.with_recipient("assistant"), MessageState.COMPLETE),
            (assistant("The answer is", "final"), MessageState.INTERRUPTED),
        ],
    )
    app = loading_app(encoding, [AFTER_TOOL], tmp_path, resume=session_id[:6])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_until(pilot, lambda: bool(app.query(ToolBlock)))
        block = app.query_one(ToolBlock)
        assert block.state == "done"
        assert block.arguments == "print(6 * 7)"
        footer = app.query_one(".turn-footer")
        assert "stopped" in str(footer.render())
        assert app.query_one(TurnView).answer_text == "The answer is"
        app.close_resources()


async def test_resume_of_an_unknown_session_is_a_notice(encoding, tmp_path):
    app = loading_app(encoding, [ANSWER], tmp_path, resume="nosuchid")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_until(pilot, lambda: any("nosuchid" in n.message for n in app._notifications))
        assert app.recorder is None
        assert not app.query(TurnView)


async def test_clear_starts_a_new_stored_session(encoding, tmp_path):
    app = loading_app(encoding, [ANSWER, SECOND], tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await submit(pilot, "first chat")
        await finish_turn(pilot)
        first_id = app.recorder.session_id
        await submit(pilot, "/clear")
        await pilot.pause()
        await submit(pilot, "second chat")
        await finish_turn(pilot)
        second_id = app.recorder.session_id
        app.close_resources()
    assert first_id and second_id and first_id != second_id
    assert len(stored_roles(first_id)) == 3
    assert stored_roles(second_id)[0] == ("user", None)


async def test_regenerate_replaces_the_stored_answer(encoding, tmp_path):
    app = loading_app(encoding, [ANSWER, SECOND], tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await submit(pilot, "hello")
        await finish_turn(pilot)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.session.last_final_text() == "More, then.")
        await finish_turn(pilot)
        session_id = app.recorder.session_id
        app.close_resources()
    with SessionStore.open_default() as store:
        saved = store.load(session_id)
    assert len(saved.messages) == 3
    assert saved.messages[-1].message.content[0].text == "More, then."


async def test_sessions_screen_resumes_renames_exports_and_deletes(encoding, tmp_path):
    older = store_session(
        "about caches",
        [
            (user("how do caches work"), MessageState.COMPLETE),
            (assistant("They keep things.", "final"), MessageState.COMPLETE),
        ],
    )
    app = loading_app(encoding, [SECOND], tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        assert [info.id for info in screen.sessions] == [older]

        await pilot.press("r")
        assert isinstance(app.screen, TextPromptModal)
        app.screen.query_one("Input").value = ""
        await type_text(pilot, "Caches explained")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.sessions[0].title == "Caches explained"

        await pilot.press("e")
        assert isinstance(app.screen, TextPromptModal)
        app.screen.query_one("Input").value = ""
        await type_text(pilot, "caches.json")
        await pilot.press("enter")
        await pilot.pause()
        exported = json.loads((tmp_path / "caches.json").read_text(encoding="utf-8"))
        assert exported["title"] == "Caches explained"
        assert len(exported["messages"]) == 2

        await pilot.press("enter")  # resume it into the running app
        await wait_until(pilot, lambda: not isinstance(app.screen, SessionsScreen))
        assert [str(m.render()) for m in app.query(UserMessage)] == ["how do caches work"]
        assert app.recorder.session_id == older
        await submit(pilot, "tell me more")
        await finish_turn(pilot)
        assert len(stored_roles(older)) == 5

        await submit(pilot, "/sessions")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")  # a "no" keeps it
        await pilot.pause()
        assert len(app.screen.sessions) == 1
        await pilot.press("d", "y")
        await pilot.pause()
        assert app.screen.sessions == []
        assert app.recorder.session_id is None  # the chat on screen was that session: it ends
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.query(UserMessage))
        assert app.session.entries == []
        app.close_resources()
    with SessionStore.open_default() as store:
        assert store.list_sessions() == []


async def test_sessions_are_in_the_command_palette(encoding, tmp_path):
    app = loading_app(encoding, [ANSWER], tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Sessions" in titles and "/sessions" in titles
        await pilot.press("ctrl+p")
        await type_text(pilot, "/sessions")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        app.close_resources()


async def test_export_json_of_the_stored_session(encoding, tmp_path):
    app = loading_app(encoding, [ANSWER], tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await submit(pilot, "hello")
        await finish_turn(pilot)
        await submit(pilot, "/export chat.json")
        await wait_until(pilot, lambda: (tmp_path / "chat.json").exists())
        session_id = app.recorder.session_id
        app.close_resources()
    data = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert data["format"] == "gptoss-chat-session"
    assert data["id"] == session_id
    assert [m["message"]["role"] for m in data["messages"]] == ["user", "assistant", "assistant"]


async def test_export_json_of_the_live_chat_when_sessions_are_not_saved(encoding, tmp_path):
    config = load_config()
    config.set("save_sessions", False, "test")
    options = LaunchOptions.from_config(config)
    options.workspace = tmp_path
    app = loading_app(encoding, [ANSWER], tmp_path, options=options)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.recorder is None
        await submit(pilot, "hello")
        await finish_turn(pilot)
        await submit(pilot, "/export live.json")
        await wait_until(pilot, lambda: (tmp_path / "live.json").exists())
        await submit(pilot, "/export live.md")
        await wait_until(pilot, lambda: (tmp_path / "live.md").exists())
    data = json.loads((tmp_path / "live.json").read_text(encoding="utf-8"))
    assert data["id"] == "unsaved" and data["title"] == "hello"
    assert data["messages"][-1]["message"]["channel"] == "final"
    assert "Anything else?" in (tmp_path / "live.md").read_text(encoding="utf-8")
    assert not locations.sessions_db().exists()


async def test_keymap_and_theme_come_from_the_config_file(encoding, tmp_path, user_dirs):
    config_file = user_dirs["config"] / "config.toml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(
        'theme = "light"\n[keymap]\ntoggle_python = "f5"\n"chat.sessions" = "f9"\n',
        encoding="utf-8",
    )
    options = LaunchOptions.from_config(load_config())
    options.workspace = tmp_path
    app = loading_app(encoding, [ANSWER], tmp_path, options=options)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.theme == "light"
        assert "python" not in app.session.tools.enabled
        await pilot.press("f5")
        assert "python" in app.session.tools.enabled
        await pilot.press("f9")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        app.close_resources()


def test_prompt_history_lives_in_the_data_dir(user_dirs):
    assert default_history_path() == locations.tui_history_file()
    assert default_history_path().is_relative_to(user_dirs["data"])


async def test_messages_typed_while_loading_go_after_the_resumed_chat(encoding, tmp_path):
    session_id = store_session(
        "earlier",
        [
            (user("first question"), MessageState.COMPLETE),
            (assistant("First answer.", "final"), MessageState.COMPLETE),
        ],
    )
    release = threading.Event()

    def load_model(options, enc, progress=None):
        release.wait(10)
        return ReplayGenerator([enc.encode(SECOND, allowed_special="all")], name="slow")

    options = LaunchOptions(workspace=tmp_path, resume=session_id)
    app = make_app(
        options, history_path=None, load_encoding=lambda o: encoding, load_model=load_model
    )
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "typed early")
        release.set()
        await ready(pilot)
        await wait_until(pilot, lambda: len(app.query(TurnView)) == 2)
        await finish_turn(pilot)
        shown = [str(m.render()) for m in app.query(UserMessage)]
        assert shown == ["first question", "typed early"]
        app.close_resources()
    with SessionStore.open_default() as store:
        saved = store.load(session_id)
    texts = [m.message.content[0].text for m in saved.messages]
    assert texts[:3] == ["first question", "First answer.", "typed early"]
    assert texts[-1] == "More, then."
