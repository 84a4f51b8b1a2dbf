"""Carries out a slash command typed in the prompt (parsing lives in slash_commands.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from openai_harmony import Role

from gptoss_chat.conversation import ChatSession, message_text
from gptoss_chat.export_markdown import conversation_markdown
from gptoss_chat.ui.screens.system_prompt_modal import SystemPromptModal
from gptoss_chat.ui.slash_commands import ParsedCommand, SlashCommandError, parse_command

if TYPE_CHECKING:
    from gptoss_chat.store import SavedSession
    from gptoss_chat.ui.app import GptossChatApp


class SlashRunner:
    def __init__(self, app: GptossChatApp) -> None:
        self.app = app
        self.screen = app.chat_screen

    def warn(self, text: str) -> None:
        self.app.notify(text, severity="warning", timeout=6)

    async def run(self, text: str) -> None:
        try:
            command = parse_command(text)
        except SlashCommandError as exc:
            self.warn(str(exc))
            return
        handler = getattr(self, f"cmd_{command.name}")
        await handler(command)

    async def cmd_reasoning(self, command: ParsedCommand) -> None:
        settings = self.app.options.settings
        self.app.set_reasoning(command.argument.lower() or settings.next_reasoning())

    async def cmd_tools(self, command: ParsedCommand) -> None:
        words = command.argument.split()
        if not words:
            states = self.app.tool_states()
            listing = ", ".join(f"{name} {'on' if on else 'off'}" for name, on in states)
            self.app.notify(f"Tools: {listing or 'none available'}", timeout=6)
            return
        if len(words) > 2 or (len(words) == 2 and words[1] not in ("on", "off")):
            self.warn("usage: /tools [NAME [on|off]]")
            return
        on = None if len(words) == 1 else words[1] == "on"
        self.app.toggle_tool(words[0], on)

    async def cmd_system(self, command: ParsedCommand) -> None:
        settings = self.app.options.settings
        if command.argument:
            self._set_system(command.argument)
            return

        def edited(text: str | None) -> None:
            if text is not None:
                self._set_system(text)

        self.app.push_screen(SystemPromptModal(settings.developer_message), edited)

    def _set_system(self, text: str) -> None:
        self.app.options.settings.developer_message = text
        note = "cleared" if not text else "set"
        self.app.notify(f"Developer instructions {note}; they apply from the next turn")

    async def cmd_clear(self, command: ParsedCommand) -> None:
        session = self.app.session
        if session is not None and session.busy:
            session.cancel()
        await self.screen.cancel_turn()
        if session is not None:
            session.clear()
        if self.app.recorder is not None:
            self.app.recorder.start_new()  # the next message opens a new stored session
        await self.screen.clear_conversation()
        self.app.notify("New conversation", timeout=3)

    async def cmd_retry(self, command: ParsedCommand) -> None:
        await self.screen.regenerate()

    async def cmd_undo(self, command: ParsedCommand) -> None:
        if self.app.tools is None:
            self.warn("The model is still loading")
            return
        tool = self.app.tools.tools.get("apply_patch")
        undo = getattr(tool, "undo", None)
        if not callable(undo):
            self.warn("/undo needs the apply_patch tool, which is not available")
            return
        try:
            report = await asyncio.to_thread(undo)
        except Exception as exc:  # PatchError and disk errors: say why, change nothing
            self.warn(f"Cannot undo: {exc}")
            return
        self.app.notify(str(report), title="Undone", timeout=8)

    async def cmd_sessions(self, command: ParsedCommand) -> None:
        self.app.show_sessions()

    async def cmd_export(self, command: ParsedCommand) -> None:
        """`/export [FILE]`: Markdown, or JSON (Harmony messages) when FILE ends in .json;
        `/export json` alone picks a file name."""
        session = self.app.session
        if session is None or not session.entries:
            self.warn("Nothing to export yet")
            return
        argument = command.argument
        if argument.lower() in ("md", "json"):
            path = self.app.export_path(f".{argument.lower()}")
        else:
            path = Path(argument).expanduser() if argument else self.app.export_path()
        if not path.is_absolute():
            path = self.app.options.workspace / path
        if path.suffix.lower() == ".json":
            text = self._session_json()
        else:
            text = conversation_markdown(session)
        try:
            await asyncio.to_thread(_write_new_text, path, text)
        except OSError as exc:
            self.warn(f"Cannot write {path}: {exc.strerror or exc}")
            return
        self.app.notify(f"Exported the conversation to {path}", timeout=8)

    def _session_json(self) -> str:
        """The stored session as export.render writes it; the live one if nothing is stored."""
        from gptoss_chat.export import render

        recorder = self.app.recorder
        session = self.app.session
        assert session is not None
        if recorder is not None and recorder.session_id is not None:
            return render(recorder.store.load(recorder.session_id), "json")
        return render(live_session(session), "json")

    async def cmd_help(self, command: ParsedCommand) -> None:
        self.app.show_help()


def live_session(session: ChatSession) -> SavedSession:
    """The conversation as if it were stored (sessions not saved): same JSON as a stored one."""
    from gptoss_chat.recording import TITLE_LENGTH, settings_snapshot
    from gptoss_chat.store import MessageState, SavedSession, SessionInfo, StoredMessage

    now = time.time()
    users = [e.message for e in session.entries if e.message.author.role == Role.USER]
    title = " ".join(message_text(users[0]).split())[:TITLE_LENGTH] if users else ""
    model = getattr(session.generator, "name", "")
    info = SessionInfo("unsaved", title, model, now, now, len(session.entries))
    settings = settings_snapshot(session)
    messages = [
        StoredMessage(
            position,
            entry.message,
            MessageState.INTERRUPTED if entry.interrupted else MessageState.COMPLETE,
            settings,
            now,
        )
        for position, entry in enumerate(session.entries)
    ]
    return SavedSession(info, messages)


def _write_new_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
