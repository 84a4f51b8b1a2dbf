"""The status line: model, backend, reasoning, tools, context, TTFT, tokens/s, load progress."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static


def _tokens(count: int) -> str:
    return f"{count / 1000:.1f}k" if count >= 10_000 else str(count)


class StatusBar(Horizontal):
    """Reads nothing itself: the app sets the reactives after each turn and on every toggle."""

    model_name: reactive[str] = reactive("loading model…")
    """The generator's name, which includes the backend ('replay (demo.json)')."""
    reasoning: reactive[str] = reactive("medium")
    tools: reactive[tuple[tuple[str, bool], ...]] = reactive(())
    """(tool name, enabled) for every tool the session has."""
    context_used: reactive[int] = reactive(0)
    context_max: reactive[int] = reactive(0)
    time_to_first_token: reactive[float | None] = reactive(None)
    tokens_per_second: reactive[float | None] = reactive(None)
    state: reactive[str] = reactive("")
    """'generating', 'waiting for approval', 'queued: 2'…; empty when idle."""
    load_fraction: reactive[float | None] = reactive(None)
    """Model load progress in [0, 1]; None once the model is ready (the bar hides)."""

    def compose(self) -> ComposeResult:
        yield Static(id="status-text")
        yield ProgressBar(total=1.0, show_eta=False, id="load-progress")

    def on_mount(self) -> None:
        self._refresh_text()

    def watch_load_fraction(self, fraction: float | None) -> None:
        bar = self.query_one("#load-progress", ProgressBar)
        bar.display = fraction is not None
        if fraction is not None:
            bar.update(progress=fraction)

    def _watch_any(self) -> None:
        self._refresh_text()

    watch_model_name = watch_reasoning = watch_tools = watch_context_used = _watch_any
    watch_context_max = watch_time_to_first_token = watch_tokens_per_second = _watch_any
    watch_state = _watch_any

    def render_text(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(self.model_name, style="bold")
        text.append("  │  reasoning ")
        text.append(self.reasoning, style="bold")
        text.append("  │  tools ")
        if not self.tools:
            text.append("none", style="dim")
        for index, (name, on) in enumerate(self.tools):
            if index:
                text.append(" ")
            text.append(f"{name} {'on' if on else 'off'}", style="bold" if on else "dim strike")
        if self.context_max:
            used = _tokens(self.context_used)
            text.append(f"  │  ctx {used}/{_tokens(self.context_max)}")
        if self.time_to_first_token is not None:
            text.append(f"  │  TTFT {self.time_to_first_token:.2f}s")
        if self.tokens_per_second is not None:
            text.append(f"  │  {self.tokens_per_second:.1f} tok/s")
        if self.state:
            text.append(f"  │  {self.state}", style="italic")
        return text

    def _refresh_text(self) -> None:
        if self.is_mounted:
            self.query_one("#status-text", Static).update(self.render_text())
