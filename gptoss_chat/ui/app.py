"""The Textual app: a thin client of ChatSession.

The first frame must come fast (benchmarks/tui.py): what only a turn or a modal needs
(Markdown, pygments, the modal screens, the tools with their SDKs) is imported or built where
it is first used, and the model loads in a worker thread.

`make_app` is the one factory the CLI (`run_app`) and the tests share; tests pass a ready
`session` (with a ReplayGenerator), the CLI lets the app load the model in a worker thread while
the screen is already usable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from gptoss_chat import locations
from gptoss_chat.factory import (
    TOOL_NAMES,
    LaunchOptions,
    load_encoding_for,
    load_generator,
    make_session,
    make_tools,
)
from gptoss_chat.generator import Generator, GeneratorError
from gptoss_chat.settings import REASONING_EFFORTS
from gptoss_chat.ui.messages import ModelLoaded, ModelLoadFailed, ModelLoadProgressed
from gptoss_chat.ui.prompt_history import PromptHistory
from gptoss_chat.ui.saved_sessions import SavedSessionsMixin
from gptoss_chat.ui.screens.chat_screen import ChatScreen
from gptoss_chat.ui.slash_commands import SLASH_COMMANDS
from gptoss_chat.ui.themes import BUNDLED_THEMES_DIR, DEFAULT_THEME, load_themes
from gptoss_chat.ui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    # openai_harmony (through these) is imported by the loading worker, after the first frame.
    from openai_harmony import HarmonyEncoding

    from gptoss_chat.conversation import ChatSession
    from gptoss_chat.recording import SessionRecorder
    from gptoss_chat.store import SessionStore
    from gptoss_chat.tools.base import Decision, Proposal, ToolRegistry
    from gptoss_chat.ui.widgets.turn_view import CitationLinker

    EncodingLoader = Callable[[LaunchOptions], HarmonyEncoding]
    GeneratorLoader = Callable[..., Generator]

Keymap = dict[str, str]


def default_history_path() -> Path:
    return locations.tui_history_file()


def normalized_keymap(keymap: Keymap) -> Keymap:
    """The config's [keymap] may name a binding without its screen (`stop = "ctrl+c"`):
    such a name means the chat screen's binding (`chat.stop`), or the app's (`app.quit`)."""
    known = {
        binding.id
        for binding in (*GptossChatApp.BINDINGS, *ChatScreen.BINDINGS)
        if isinstance(binding, Binding) and binding.id
    }
    result: Keymap = {}
    for name, keys in keymap.items():
        if name not in known and "." not in name:
            name = next((f"{p}.{name}" for p in ("chat", "app") if f"{p}.{name}" in known), name)
        result[name] = keys
    return result


class GptossChatApp(SavedSessionsMixin, App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    """Absolute, so subclasses defined elsewhere (benchmarks, tests) find it too."""
    TITLE = "gptoss-chat"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            id="app.quit",
            tooltip="Leave gptoss-chat",
            priority=True,
            show=False,
        ),
    ]

    def __init__(
        self,
        options: LaunchOptions,
        *,
        session: ChatSession | None = None,
        keymap: Keymap | None = None,
        history_path: Path | None = None,
        theme_dirs: Iterable[Path] = (),
        load_encoding: EncodingLoader = load_encoding_for,
        load_model: GeneratorLoader = load_generator,
    ) -> None:
        super().__init__()
        self.options = options
        self.session: ChatSession | None = session
        """None until the model has loaded; then the conversation."""
        self.tools: ToolRegistry | None = session.tools if session is not None else None
        """None while the model loads; until then the tool keys edit `options.tools_enabled`."""
        self.history = PromptHistory(history_path)
        self._load_encoding = load_encoding
        self._load_model = load_model
        self._startup_notices: list[str] = []
        self.recorder: SessionRecorder | None = None
        """Saves the conversation as it goes; None when sessions are not saved."""
        self._browse_store: SessionStore | None = None
        if session is not None:
            session.approver = self.approve
        keymap = options.keymap if keymap is None else keymap
        if keymap:
            self.set_keymap(normalized_keymap(keymap))
        self._install_themes([BUNDLED_THEMES_DIR, *theme_dirs], options.theme)

    # -- themes ----------------------------------------------------------------------------------

    def _install_themes(self, directories: list[Path], wanted: str | None) -> None:
        loaded = load_themes(directories)
        self._startup_notices += loaded.errors
        for theme in loaded.themes.values():
            self.register_theme(theme)
        name = wanted or DEFAULT_THEME
        if name not in self.available_themes:
            known = ", ".join(sorted(loaded.themes)) or "none"
            self._startup_notices.append(f"unknown theme {name!r} (bundled: {known})")
            name = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = name

    # -- start-up --------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return ChatScreen()

    @property
    def chat_screen(self) -> ChatScreen:
        return next(s for s in self.screen_stack if isinstance(s, ChatScreen))

    def on_mount(self) -> None:
        for notice in self._startup_notices:
            self.notify(notice, title="Theme", severity="warning", timeout=8)

    def start_loading(self) -> None:
        """Called by the chat screen once it is mounted, so progress has a bar to land on."""
        self.status_bar.load_fraction = 0.0
        self.load_model_in_background()

    @property
    def status_bar(self) -> StatusBar:
        return self.chat_screen.query_one(StatusBar)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_model_in_background(self) -> None:
        """Blocking loads (tokenizer file, weights) run here; the screen stays usable."""

        def progress(fraction: float, description: str) -> None:
            self.post_message(ModelLoadProgressed(fraction, description))

        try:
            progress(0.0, "loading the tokenizer")
            encoding = self._load_encoding(self.options)
            progress(0.05, "loading the model")
            generator = self._load_model(self.options, encoding, progress)
            tools = make_tools(self.options)
        except GeneratorError as exc:
            self.post_message(ModelLoadFailed(str(exc)))
            return
        except Exception as exc:  # any loader failure is shown, never a traceback
            self.post_message(ModelLoadFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(ModelLoaded(encoding, generator, tools))

    @on(ModelLoadProgressed)
    def _load_progressed(self, message: ModelLoadProgressed) -> None:
        bar = self.status_bar
        bar.load_fraction = max(0.0, min(1.0, message.fraction))
        bar.state = message.description

    @on(ModelLoaded)
    async def _model_loaded(self, message: ModelLoaded) -> None:
        tools = message.tools
        for name in tools.tools:  # keys pressed while loading win over the command line
            tools.set_enabled(name, name in self.options.tools_enabled)
        missing = sorted(self.options.tools_enabled - set(tools.tools))
        if missing:
            self.notify(
                f"Not available in this build: {', '.join(missing)}", severity="warning", timeout=8
            )
        self.tools = tools
        self.session = make_session(
            self.options,
            encoding=message.encoding,
            generator=message.generator,
            approver=self.approve,
            tools=tools,
        )
        self.status_bar.load_fraction = None
        await self._attach_persistence()
        self.chat_screen.refresh_status("")
        self.chat_screen.process_queue()

    @on(ModelLoadFailed)
    def _load_failed(self, message: ModelLoadFailed) -> None:
        bar = self.status_bar
        bar.load_fraction = None
        bar.model_name = "no model"
        bar.state = "model failed to load"
        self.notify(message.error, title="Cannot load the model", severity="error", timeout=30)

    # -- approvals -------------------------------------------------------------------------------

    async def approve(self, proposal: Proposal) -> Decision:
        """The session's approver: show the modal and wait; the turn waits with it."""
        from gptoss_chat.tools.base import Decision
        from gptoss_chat.ui.screens.approval_modal import ApprovalModal
        from gptoss_chat.ui.screens.patch_review_modal import PatchReviewModal

        modal = (
            PatchReviewModal(proposal)
            if proposal.preview_kind == "diff"
            else ApprovalModal(proposal)
        )
        answer: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

        def decided(decision: Decision | None) -> None:
            if not answer.done():
                answer.set_result(decision if decision is not None else Decision.deny())

        self.push_screen(modal, decided)
        try:
            return await answer
        finally:
            # The turn was stopped while the modal was up: take it down with the turn.
            if not answer.done() and modal in self.screen_stack and self.screen is modal:
                self.pop_screen()

    # -- settings the keys and commands change -------------------------------------------------

    def citation_linker(self) -> CitationLinker | None:
        """The browser tool's citation resolver, if the session has a browser."""
        browser = self.tools.tools.get("browser") if self.tools is not None else None
        linker = getattr(browser, "normalize_citations", None)
        return linker if callable(linker) else None

    def tool_states(self) -> tuple[tuple[str, bool], ...]:
        """(name, enabled) per tool; while loading, the tools the options ask for."""
        if self.tools is not None:
            return tuple((name, name in self.tools.enabled) for name in self.tools.tools)
        return tuple((name, name in self.options.tools_enabled) for name in TOOL_NAMES)

    def toggle_tool(self, name: str, on: bool | None = None) -> None:
        known = self.tools.tools if self.tools is not None else TOOL_NAMES
        if name not in known:
            self.notify(
                f"The {name} tool is not available in this build", severity="warning", timeout=5
            )
            return
        enabled = self.tools.enabled if self.tools is not None else self.options.tools_enabled
        state = (name not in enabled) if on is None else on
        if self.tools is not None:
            self.tools.set_enabled(name, state)
        (self.options.tools_enabled.add if state else self.options.tools_enabled.discard)(name)
        self.chat_screen.refresh_status()
        self.notify(f"{name} {'on' if state else 'off'} from the next turn", timeout=3)

    def set_reasoning(self, effort: str) -> None:
        if effort not in REASONING_EFFORTS:
            self.notify(
                f"reasoning must be one of {', '.join(REASONING_EFFORTS)}", severity="warning"
            )
            return
        self.options.settings.reasoning = effort
        self.chat_screen.refresh_status()
        self.notify(f"Reasoning effort: {effort}", timeout=3)

    async def run_slash_command(self, text: str) -> None:
        from gptoss_chat.ui.slash_runner import SlashRunner

        await SlashRunner(self).run(text)

    def show_help(self) -> None:
        from gptoss_chat.ui.screens.help_modal import HelpModal

        self.push_screen(HelpModal(self.key_help()))

    def key_help(self) -> list[tuple[str, str]]:
        """(keys, description) of the chat and app bindings as currently mapped (keymap too)."""
        rows: list[tuple[str, str]] = []
        for key, active in self.chat_screen.active_bindings.items():
            binding = active.binding
            if binding.id and binding.id.startswith(("chat.", "app.")):
                shown = self.get_key_display(binding) or key
                rows.append((shown, binding.tooltip or binding.description))
        return rows

    def export_path(self, suffix: str = ".md") -> Path:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return self.options.workspace / f"gptoss-chat-{stamp}{suffix}"

    # -- command palette -------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        chat = self.chat_screen
        for binding in ChatScreen.BINDINGS:
            if isinstance(binding, Binding):
                yield SystemCommand(
                    binding.description, binding.tooltip, partial(chat.run_action, binding.action)
                )
        for effort in REASONING_EFFORTS:
            yield SystemCommand(
                f"Reasoning: {effort}",
                f"Set the reasoning effort to {effort}",
                partial(self.set_reasoning, effort),
            )
        for command in SLASH_COMMANDS:
            run = partial(self.run_slash_command, f"/{command.name}")
            yield SystemCommand(f"/{command.name}", command.help, run)


def make_app(
    options: LaunchOptions,
    *,
    session: ChatSession | None = None,
    keymap: Keymap | None = None,
    history_path: Path | None = None,
    theme_dirs: Iterable[Path] = (),
    load_encoding: EncodingLoader = load_encoding_for,
    load_model: GeneratorLoader = load_generator,
) -> GptossChatApp:
    """The app as the CLI runs it; tests pass `session` to skip loading a model."""
    return GptossChatApp(
        options,
        session=session,
        keymap=keymap,
        history_path=history_path,
        theme_dirs=theme_dirs,
        load_encoding=load_encoding,
        load_model=load_model,
    )


def run_app(options: LaunchOptions, *, keymap: Keymap | None = None) -> int:
    """The TUI. Key map and theme come from `options` (the config file's [keymap] and `theme`,
    or --theme); `keymap` overrides the options' map."""
    app = make_app(options, keymap=keymap, history_path=default_history_path())
    try:
        app.run()
    finally:
        app.close_resources()
    return app.return_code or 0
