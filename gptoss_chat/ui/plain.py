"""`gptoss-chat --plain`: a line REPL for ssh sessions and terminals without a full-screen app.

prompt_toolkit reads the input (history file, multi-line with Alt+Enter or a trailing `\\`,
completion of slash commands), rich prints the output. Tool calls ask y/n like the TUI's
approval modal. Ctrl-C stops the answer in progress and keeps the REPL; Ctrl-D quits.
`--raw` prints the Harmony token stream instead, as the model sees and writes it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from openai_harmony import HarmonyEncoding, Role
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from rich.console import Console
from rich.markup import escape

from gptoss_chat import locations
from gptoss_chat.events import Event, TurnStarted
from gptoss_chat.export import EXPORT_FORMATS, render
from gptoss_chat.factory import (
    LaunchOptions,
    attach_persistence,
    load_encoding_for,
    load_generator,
    make_session,
)
from gptoss_chat.generator import Generator
from gptoss_chat.recording import SessionRecorder
from gptoss_chat.settings import REASONING_EFFORTS
from gptoss_chat.store import StoreError
from gptoss_chat.tools.base import Decision, Proposal, ToolRegistry
from gptoss_chat.ui.plain_render import EventPrinter, proposal_renderable

COMMANDS = {
    "/reasoning": "[low|medium|high]  set the reasoning effort (no argument: next one)",
    "/tools": "[NAME on|off]  list the tools, or switch one",
    "/system": "[TEXT]  set the developer instructions (`/system -` clears, none shows)",
    "/clear": "start a new conversation",
    "/retry": "answer your last message again",
    "/undo": "remove your last message and everything after it",
    "/export": "[md|json] [FILE]  write this conversation to a file",
    "/help": "this list",
    "/quit": "leave (Ctrl-D works too)",
}
APPROVAL_HELP = "[y]es · [n]o (or `n REASON`) · [a]lways for this session"


class SlashCompleter(Completer):
    """Completes slash commands and their arguments at the start of the input."""

    def __init__(self, tool_names: Iterable[str]) -> None:
        self.arguments = {
            "/reasoning": list(REASONING_EFFORTS),
            "/tools": sorted(tool_names),
            "/export": list(EXPORT_FORMATS),
        }

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        words = text.split(" ")
        if len(words) == 1:
            for command, meaning in COMMANDS.items():
                if command.startswith(text):
                    yield Completion(command, -len(text), display_meta=meaning)
            return
        choices = self.arguments.get(words[0], [])
        if words[0] == "/tools" and len(words) == 3:
            choices = ["on", "off"]
        elif len(words) > 2:
            return
        for choice in choices:
            if choice.startswith(words[-1]):
                yield Completion(choice, -len(words[-1]))


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    # Enter arrives as c-j when typed ahead in cooked mode (while an answer streams): submit too.
    @bindings.add("enter", eager=True)
    @bindings.add("c-j", eager=True)
    def _submit(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.text.endswith("\\"):  # a trailing backslash continues on the next line
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


class PlainRepl:
    def __init__(
        self,
        options: LaunchOptions,
        encoding: HarmonyEncoding,
        generator: Generator,
        console: Console,
        tools: ToolRegistry | None = None,
    ) -> None:
        self.options = options
        self.encoding = encoding
        self.console = console
        self.session = make_session(
            options, encoding=encoding, generator=generator, approver=self.approve, tools=tools
        )
        self.printer = EventPrinter(console, raw=options.raw)
        self.recorder: SessionRecorder | None = None
        self.interactive = sys.stdin.isatty()
        """False when input is piped: lines are read without prompt_toolkit."""
        self.input: PromptSession[str] | None = None
        self.answers: PromptSession[str] | None = None
        if self.interactive:  # prompt_toolkit warns about (and mangles) piped input
            path = locations.history_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.input = PromptSession(
                history=FileHistory(str(path)),
                completer=SlashCompleter(self.session.tools.tools),
                key_bindings=_key_bindings(),
                multiline=True,
                complete_while_typing=True,
                prompt_continuation="… ",
            )
            self.answers = PromptSession()
        self._raw_shown: int | None = None
        """--raw: how many entries the terminal has shown as tokens (None: nothing yet)."""
        if options.raw:
            self.session.raw_listener = self._print_raw

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> int:
        try:
            self.recorder = attach_persistence(self.session, self.options)
        except StoreError as exc:
            self.console.print(f"[red]gptoss-chat: {escape(str(exc))}[/]", highlight=False)
            return 1
        self._banner()
        try:
            while True:
                try:
                    text = await self._read(self.input, "› ")
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    return 0
                text = text.strip()
                if not text:
                    continue
                if text.startswith("/"):
                    if not await self.command(text):
                        return 0
                    continue
                await self.turn(self.session.send(text))
        finally:
            self.session.tools.close()
            if self.recorder is not None:
                self.recorder.store.close()

    def _banner(self) -> None:
        generator = self.session.generator
        self.console.print(f"[bold]gptoss-chat[/] · {escape(generator.name)}", highlight=False)
        if self.recorder is not None and self.options.resume and self.session.entries:
            self.console.print(f"[dim]resumed session {self.recorder.session_id}[/]")
            self.printer.replay(self.session.entries)
        self.console.print("[dim]/help for commands · Alt+Enter for a new line · Ctrl-D quits[/]")

    async def turn(self, events: AsyncIterator[Event]) -> None:
        """Run one turn; Ctrl-C (SIGINT while the terminal is in cooked mode) stops it."""
        loop = asyncio.get_running_loop()
        handled = _on_sigint(loop, self.session.cancel)
        try:
            async for event in events:
                if isinstance(event, TurnStarted) and self.options.raw:
                    self._print_raw_prompt()
                self.printer.handle(event)
        finally:
            self.printer.stop_live()
            if handled:
                loop.remove_signal_handler(signal.SIGINT)

    async def approve(self, proposal: Proposal) -> Decision:
        """The approver: show the proposal, ask y/n/a; Ctrl-C denies and stops the turn."""
        self.printer.stop_live()
        self.console.print()
        self.console.print(proposal_renderable(proposal))
        while True:
            try:
                answer = await self._read(self.answers, f"Allow? {APPROVAL_HELP} › ")
            except (KeyboardInterrupt, EOFError):
                self.session.cancel()
                return Decision.deny("the user stopped the turn")
            decision = parse_approval(answer)
            if decision is not None:
                return decision
            self.console.print(f"[yellow]answer {escape(APPROVAL_HELP)}[/]")

    async def _read(self, prompt: PromptSession[str] | None, message: str) -> str:
        """A line from the user: prompt_toolkit on a terminal, plain lines from a pipe."""
        if prompt is not None:
            return await prompt.prompt_async(message)
        self.console.print(message, end="", markup=False)
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            raise EOFError
        self.console.print(line.rstrip("\n"), markup=False, highlight=False)
        return line

    # -- slash commands -------------------------------------------------------------------------

    async def command(self, text: str) -> bool:
        """Run a slash command; False means quit."""
        name, _, rest = text.partition(" ")
        rest = rest.strip()
        session = self.session
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            for command, meaning in COMMANDS.items():
                self.console.print(f"  [bold]{command}[/] {escape(meaning)}", highlight=False)
        elif name == "/reasoning":
            if rest and rest not in REASONING_EFFORTS:
                self._say(f"reasoning effort must be one of {', '.join(REASONING_EFFORTS)}")
            else:
                session.settings.reasoning = rest or session.settings.next_reasoning()
                self._say(f"reasoning effort: {session.settings.reasoning}")
        elif name == "/tools":
            self._tools(rest)
        elif name == "/system":
            if rest:
                session.settings.developer_message = "" if rest == "-" else rest
            self._say(f"developer instructions: {session.settings.developer_message or '(none)'}")
        elif name == "/clear":
            session.clear()
            if self.recorder is not None:
                self.recorder.start_new()
            self._say("new conversation")
        elif name == "/retry":
            await self.turn(session.retry())
        elif name == "/undo":
            self._undo()
        elif name == "/export":
            self._export(rest.split())
        else:
            self._say(f"unknown command {name}: /help lists them")
        return True

    def _say(self, text: str) -> None:
        self.console.print(f"[dim]{escape(text)}[/]", highlight=False)

    def _tools(self, rest: str) -> None:
        registry = self.session.tools
        words = rest.split()
        if len(words) == 2 and words[1] in ("on", "off"):
            try:
                registry.set_enabled(words[0], words[1] == "on")
            except KeyError as exc:
                self._say(str(exc.args[0]))
                return
        elif words:
            self._say("usage: /tools NAME on|off")
            return
        if not registry.tools:
            self._say("no tools are available in this build")
        for name in registry.tools:
            state = "on" if name in registry.enabled else "off"
            policy = self.session.settings.policy(name).value
            self._say(f"{name}: {state} (approval: {policy})")

    def _undo(self) -> None:
        index = self.session.last_user_index()
        if index is None:
            self._say("nothing to undo")
            return
        del self.session.entries[index:]
        if self.recorder is not None:
            self.recorder.sync(self.session)
        self._say("removed your last message and its answer")

    def _export(self, words: list[str]) -> None:
        fmt = words[0] if words and words[0] in EXPORT_FORMATS else "md"
        rest = words[1:] if words and words[0] in EXPORT_FORMATS else words
        if self.recorder is None or self.recorder.session_id is None:
            self._say("nothing to export yet (or sessions are not saved: save_sessions = false)")
            return
        session_id = self.recorder.session_id
        path = Path(rest[0] if rest else f"gptoss-chat-{session_id}.{fmt}").expanduser()
        try:
            path.write_text(render(self.recorder.store.load(session_id), fmt), encoding="utf-8")
        except (OSError, StoreError) as exc:
            self._say(f"export failed: {exc}")
            return
        self._say(f"wrote {path}")

    # -- --raw ----------------------------------------------------------------------------------

    def _print_raw_prompt(self) -> None:
        """What the model is about to read that the terminal has not shown: the whole prompt
        at first, then each new user or tool message (the model's own messages were printed
        as it wrote them), and the `<|start|>assistant` that hands it the turn."""
        entries = self.session.entries
        if self._raw_shown is None or self._raw_shown > len(entries):
            tokens = self.session.render_prompt()
        else:
            tokens = [
                token
                for entry in entries[self._raw_shown :]
                if entry.message.author.role != Role.ASSISTANT
                for token in self.encoding.render(entry.message)
            ]
            tokens += self.encoding.encode("<|start|>assistant", allowed_special="all")
        self._raw_shown = len(entries)
        self._print_raw(tokens)

    def _print_raw(self, ids: list[int]) -> None:
        self.console.out(self.encoding.decode(ids), end="", highlight=False)


def parse_approval(answer: str) -> Decision | None:
    """y / yes, a / always, n / no, `n REASON` or `no: REASON`; None when unclear."""
    text = answer.strip()
    word, _, reason = text.partition(" ")
    word = word.rstrip(":,").lower()
    if word in ("y", "yes") and not reason:
        return Decision.approve()
    if word in ("a", "always") and not reason:
        return Decision.allow_session()
    if word in ("n", "no"):
        return Decision.deny(reason.strip(" :"))
    return None


def _on_sigint(loop: asyncio.AbstractEventLoop, callback) -> bool:
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        return False
    return True


def run_plain(
    options: LaunchOptions, *, tools: ToolRegistry | None = None, console: Console | None = None
) -> int:
    """The entry point of --plain and --raw (launch.py)."""
    console = console or Console(highlight=False)
    try:
        encoding = load_encoding_for(options)
        with console.status("loading the model…") as status:
            generator = load_generator(
                options,
                encoding,
                progress=lambda fraction, text: status.update(f"{text} {fraction:.0%}"),
            )
    except Exception as exc:  # loading errors are the user's to read, not a traceback
        console.print(f"[red]gptoss-chat: {escape(str(exc))}[/]", highlight=False)
        return 1
    try:
        repl = PlainRepl(options, encoding, generator, console, tools)
    except ValueError as exc:  # a tool setting the user must fix (e.g. exa without a key)
        console.print(f"[red]gptoss-chat: {escape(str(exc))}[/]", highlight=False)
        return 1
    return asyncio.run(repl.run())
