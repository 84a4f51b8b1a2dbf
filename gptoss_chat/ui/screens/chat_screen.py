"""The main screen: conversation, prompt, status bar; keys, slash commands and the turn worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Label, TextArea
from textual.worker import WorkerCancelled, WorkerFailed

from gptoss_chat.ui import slash_commands
from gptoss_chat.ui.collector_pause import CollectorPause
from gptoss_chat.ui.widgets.chat_log import ChatLog, UserMessage
from gptoss_chat.ui.widgets.prompt_input import PromptInput
from gptoss_chat.ui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gptoss_chat.conversation import Entry
    from gptoss_chat.events import Event, TurnDone
    from gptoss_chat.ui.app import GptossChatApp

EMPTY_HINT = (
    "Type a message and press Enter · Ctrl+J new line · /help for commands · Ctrl+P palette"
)


class ChatScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    """Below 110 columns the analysis goes above the answer instead of beside it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", id="chat.stop", tooltip="Stop the answer being written"),
        Binding(
            "ctrl+b",
            "toggle_tool('browser')",
            "Browser",
            id="chat.toggle_browser",
            tooltip="Switch the browser tool on or off (from the next turn)",
        ),
        Binding(
            "ctrl+t",
            "toggle_tool('python')",
            "Python",
            id="chat.toggle_python",
            tooltip="Switch the python tool on or off (from the next turn)",
        ),
        Binding(
            "ctrl+n",
            "toggle_tool('apply_patch')",
            "Patch",
            id="chat.toggle_apply_patch",
            tooltip="Switch the apply_patch tool on or off (from the next turn)",
        ),
        Binding(
            "ctrl+r",
            "cycle_reasoning",
            "Reasoning",
            id="chat.cycle_reasoning",
            tooltip="Cycle the reasoning effort low → medium → high",
        ),
        Binding(
            "ctrl+o",
            "toggle_analysis",
            "Analysis",
            id="chat.toggle_analysis",
            tooltip="Collapse or expand the analysis of every turn",
        ),
        Binding(
            "ctrl+g",
            "regenerate",
            "Regenerate",
            id="chat.regenerate",
            tooltip="Answer the last message again",
        ),
        Binding(
            "ctrl+l",
            "copy_answer",
            "Copy",
            id="chat.copy_answer",
            tooltip="Copy the last answer to the clipboard",
        ),
        Binding(
            "f2",
            "sessions",
            "Sessions",
            id="chat.sessions",
            tooltip="Saved sessions: resume, rename, delete, export",
        ),
        Binding("f1", "help", "Help", id="chat.help", tooltip="Keys and commands"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.queue: deque[tuple[str, UserMessage]] = deque()
        """Messages typed before the model was ready or while it was answering."""
        self.analysis_collapsed = False
        """The global state the analysis key toggles; new turns start this way."""
        self._turn_active = False
        self.collector_pause = CollectorPause()
        """Full garbage collections wait while a turn streams (see collector_pause.py)."""

    @property
    def chat_app(self) -> GptossChatApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with ChatLog(id="chat-log"):
            yield Label(EMPTY_HINT, id="empty-hint")
        yield Label(id="command-hint")
        yield PromptInput(self.chat_app.history, id="prompt")
        yield StatusBar(id="status-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PromptInput).focus()
        self.refresh_status()
        if self.chat_app.session is None:
            # After the first frame: the loader thread (tokenizer, weights) would otherwise
            # compete with it for the GIL.
            self.call_after_refresh(self.chat_app.start_loading)

    def on_unmount(self) -> None:
        # The app may quit mid-turn or before the release timer: give the collector back.
        self.collector_pause.release()

    # -- status ----------------------------------------------------------------------------------

    def refresh_status(self, state: str | None = None) -> None:
        app = self.chat_app
        bar = self.query_one(StatusBar)
        session = app.session
        bar.reasoning = app.options.settings.reasoning
        bar.tools = app.tool_states()
        if session is not None:
            bar.model_name = getattr(session.generator, "name", "model")
            bar.context_max = getattr(session.generator, "context_length", 0)
            bar.context_used = session.context_used
        if state is not None:
            bar.state = state
        elif not self.busy:
            bar.state = f"queued: {len(self.queue)}" if self.queue else ""

    def show_turn_stats(self, done: TurnDone) -> None:
        bar = self.query_one(StatusBar)
        if sum(s.generated_tokens for s in done.stats):
            bar.time_to_first_token = done.stats[0].time_to_first_token
            rate = done.stats[-1].decode_tokens_per_second
            bar.tokens_per_second = rate or None

    @property
    def busy(self) -> bool:
        session = self.chat_app.session
        return self._turn_active or bool(session is not None and session.busy)

    # -- prompt ----------------------------------------------------------------------------------

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        hint = self.query_one("#command-hint", Label)
        text = slash_commands.hint(event.text_area.text)
        hint.update(text)
        hint.set_class(bool(text), "-visible")

    @on(PromptInput.Submitted)
    async def _prompt_submitted(self, event: PromptInput.Submitted) -> None:
        if slash_commands.is_command(event.text):
            await self.chat_app.run_slash_command(event.text)
        else:
            text = event.text[1:] if event.text.startswith("//") else event.text
            await self.send_message(text)

    async def send_message(self, text: str) -> None:
        log = self.query_one(ChatLog)
        await self._remove_empty_hint()
        if self.chat_app.session is None or self.busy or self.queue:
            widget = await log.add_user(text, queued=True)
            self.queue.append((text, widget))
            self.refresh_status()
            return
        widget = await log.add_user(text)
        self.start_turn(self._send_events(text))

    def _send_events(self, text: str) -> AsyncIterator[Event]:
        session = self.chat_app.session
        assert session is not None
        return session.send(text)

    def process_queue(self) -> None:
        """Send the oldest queued message if the model is ready and idle."""
        if not self.queue or self.chat_app.session is None or self.busy:
            return
        text, widget = self.queue.popleft()
        widget.mark_sent()
        self.start_turn(self._send_events(text))

    async def _remove_empty_hint(self) -> None:
        for hint in self.query("#empty-hint"):
            await hint.remove()

    # -- the turn worker -------------------------------------------------------------------------

    def start_turn(self, events: AsyncIterator[Event]) -> None:
        self._turn_active = True
        self.refresh_status("generating")
        self.run_turn(events)

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def run_turn(self, events: AsyncIterator[Event]) -> None:
        """The one consumer of core events. Never raises: errors become notices."""
        from gptoss_chat.events import TurnDone
        from gptoss_chat.ui.turn_driver import TurnDriver

        log = self.query_one(ChatLog)
        self.collector_pause.hold()
        turn = await log.add_turn(analysis_collapsed=self.analysis_collapsed)
        driver = TurnDriver(
            turn,
            on_error=lambda text: self.notify(text, title="Error", severity="error"),
            on_state=self.refresh_status,
        )
        try:
            async for event in events:
                await driver.handle(event)
        except asyncio.CancelledError:
            # Close the core's generator now, while the loop runs: that cancels the generation
            # thread instead of leaving it to the loop's shutdown.
            self._turn_active = False
            self.collector_pause.release()
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            raise
        except Exception as exc:  # a bug below must not take the app down
            message = f"the turn failed: {type(exc).__name__}: {exc}"
            self.notify(message, title="Error", severity="error")
            await turn.add_error(message)
            await turn.finish(TurnDone("", interrupted=True, error=message))
        linker = self.chat_app.citation_linker()
        if linker is not None and "【" in turn.answer_text:
            await turn.link_citations(linker)
        self._turn_active = False
        self.collector_pause.release_later(self)
        if driver.done is not None:
            self.show_turn_stats(driver.done)
        self.refresh_status("")
        # After this worker has ended: an exclusive worker started from inside it would cancel it.
        self.call_later(self.process_queue)

    # -- actions ---------------------------------------------------------------------------------

    def action_stop(self) -> None:
        session = self.chat_app.session
        if session is not None and session.busy:
            session.cancel()
            self.refresh_status("stopping…")
        elif self.queue:
            _, widget = self.queue.pop()
            widget.remove()
            self.notify("Removed the last queued message")
            self.refresh_status()

    def action_toggle_tool(self, name: str) -> None:
        self.chat_app.toggle_tool(name)

    def action_cycle_reasoning(self) -> None:
        self.chat_app.set_reasoning(self.chat_app.options.settings.next_reasoning())

    def action_toggle_analysis(self) -> None:
        self.analysis_collapsed = not self.analysis_collapsed
        for turn in self.query_one(ChatLog).turns():
            turn.set_analysis_collapsed(self.analysis_collapsed)

    async def action_regenerate(self) -> None:
        await self.regenerate()

    async def regenerate(self) -> None:
        session = self.chat_app.session
        if session is None:
            self.notify("The model is still loading", severity="warning")
            return
        if self.busy:
            self.notify("Wait for the answer to finish (Esc stops it)", severity="warning")
            return
        if session.last_user_index() is None:
            self.notify("Nothing to regenerate yet", severity="warning")
            return
        await self._remove_turns_after_last_user()
        self.start_turn(session.retry())

    async def _remove_turns_after_last_user(self) -> None:
        log = self.query_one(ChatLog)
        children = list(log.children)
        users = [i for i, child in enumerate(children) if isinstance(child, UserMessage)]
        if users:
            await log.remove_children(children[users[-1] + 1 :])

    def action_copy_answer(self) -> None:
        session = self.chat_app.session
        text = session.last_final_text() if session is not None else ""
        if not text:
            self.notify("No answer to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the last answer ({len(text)} characters)")

    def action_help(self) -> None:
        self.chat_app.show_help()

    def action_sessions(self) -> None:
        self.chat_app.show_sessions()

    async def show_entries(self, entries: Sequence[Entry], *, before_queued: bool = False) -> None:
        """Draw a stored conversation; `before_queued` keeps messages typed while the model
        loaded below it, since they are sent after it."""
        from gptoss_chat.ui.resumed import show_entries

        if not entries:
            return
        await self._remove_empty_hint()
        log = self.query_one(ChatLog)
        await show_entries(log, entries, analysis_collapsed=self.analysis_collapsed)
        if before_queued:
            for _, widget in self.queue:
                log.move_child(widget, after=log.children[-1])
        log.scroll_end(animate=False)

    async def cancel_turn(self) -> None:
        """End the turn worker at once (used by /clear); the core's generator is closed."""
        for worker in [w for w in self.workers if w.group == "turn" and w.is_running]:
            worker.cancel()
            with contextlib.suppress(WorkerCancelled, WorkerFailed, asyncio.CancelledError):
                await worker.wait()
        self._turn_active = False

    async def clear_conversation(self) -> None:
        log = self.query_one(ChatLog)
        await log.clear()
        self.queue.clear()
        self.query_one(StatusBar).time_to_first_token = None
        self.query_one(StatusBar).tokens_per_second = None
        self.refresh_status()
