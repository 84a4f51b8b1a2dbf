"""The TUI's saved sessions: recording the chat, --resume, the sessions screen, and closing.

A mixin of the app, so the app keeps one place per concern and tests reach `app.recorder`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.app import App

    from gptoss_chat.conversation import ChatSession
    from gptoss_chat.factory import LaunchOptions
    from gptoss_chat.recording import SessionRecorder
    from gptoss_chat.store import SessionStore
    from gptoss_chat.tools.base import ToolRegistry
    from gptoss_chat.ui.screens.chat_screen import ChatScreen

    _Base = App[int]
else:
    _Base = object


class SavedSessionsMixin(_Base):
    options: LaunchOptions
    session: ChatSession | None
    tools: ToolRegistry | None
    recorder: SessionRecorder | None
    """Saves the conversation as it goes; None when sessions are not saved."""
    _browse_store: SessionStore | None

    if TYPE_CHECKING:  # provided by GptossChatApp

        @property
        def chat_screen(self) -> ChatScreen: ...

        async def run_slash_command(self, text: str) -> None: ...

    async def _attach_persistence(self) -> None:
        """Save every message from now on; with --resume, show and continue that session."""
        from gptoss_chat.factory import attach_persistence
        from gptoss_chat.store import StoreError

        assert self.session is not None
        try:
            self.recorder = attach_persistence(self.session, self.options)
        except StoreError as exc:
            self.notify(str(exc), title="Sessions", severity="error", timeout=15)
            return
        if self.recorder is not None and self.options.resume:
            await self.chat_screen.show_entries(self.session.entries, before_queued=True)
            self.notify(f"Resumed session {self.recorder.session_id}", timeout=5)

    def session_store(self) -> SessionStore:
        """The store the recorder writes to, or the user's database opened to browse it."""
        if self.recorder is not None:
            return self.recorder.store
        if self._browse_store is None:
            from gptoss_chat.store import SessionStore

            self._browse_store = SessionStore.open_default()
        return self._browse_store

    async def resume_stored(self, ref: str) -> bool:
        """Replace the conversation on screen and in the session by stored session `ref`, and
        record into it from now on. False (with a notice) when it cannot be done now."""
        from gptoss_chat.recording import attach_store
        from gptoss_chat.store import StoreError

        session = self.session
        if session is None:
            self.notify("The model is still loading", severity="warning")
            return False
        if self.chat_screen.busy:
            self.notify("Wait for the answer to finish (Esc stops it)", severity="warning")
            return False
        if self.recorder is None:
            self.recorder = attach_store(session, self.session_store())
            self._browse_store = None  # the recorder owns it now
        try:
            saved = self.recorder.resume(session, ref)
        except StoreError as exc:
            self.notify(str(exc), title="Sessions", severity="error")
            return False
        await self.chat_screen.clear_conversation()
        await self.chat_screen.show_entries(session.entries)
        self.chat_screen.refresh_status("")
        self.notify(f"Resumed {saved.info.display_title}", timeout=5)
        return True

    def stored_session_deleted(self, session_id: str) -> None:
        """The sessions screen deleted `session_id`: if it is the chat on screen, that chat
        ends as /clear ends it (a later message must not be saved without its beginning)."""
        if self.recorder is not None and self.recorder.session_id == session_id:
            self.recorder.start_new()
            self.call_later(self.run_slash_command, "/clear")

    def show_sessions(self) -> None:
        from gptoss_chat.store import StoreError
        from gptoss_chat.ui.screens.sessions_screen import SessionsScreen

        try:
            store = self.session_store()
        except StoreError as exc:
            self.notify(str(exc), title="Sessions", severity="error")
            return
        self.push_screen(SessionsScreen(store))

    def close_resources(self) -> None:
        """Tools (containers, HTTP clients) and the sessions database, at exit."""
        if self.tools is not None:
            self.tools.close()
        for store in (self.recorder.store if self.recorder else None, self._browse_store):
            if store is not None:
                store.close()
