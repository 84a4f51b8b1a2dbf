"""Long streamed turns: finished blocks are frozen into one widget each, and the screen shows
exactly what it would show without freezing, whatever is scrolled into view."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets.markdown import MarkdownBlock

from gptoss_chat.events import TurnDone
from gptoss_chat.ui.widgets import streamed_markdown
from gptoss_chat.ui.widgets.chat_log import ChatLog
from gptoss_chat.ui.widgets.frozen_blocks import FrozenBlocks
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import build_session, finish_turn, submit, wait_until
from tests.ui.test_frozen_blocks import screen_cells

SIZE = (120, 40)
SECTIONS = 40


def long_completion() -> str:
    analysis = "".join(
        f"Step {n}: check the cache eviction order and the dirty pages once more.\n\n"
        for n in range(1, SECTIONS)
    )
    answer = "".join(
        f"## Part {n}\n\nThe cache evicts the **least recently used** page first, `{n}`.\n\n"
        + ("- dirty pages first\n- then a read\n\n" if n % 3 == 0 else "")
        for n in range(1, SECTIONS)
    )
    return (
        f"<|channel|>analysis<|message|>{analysis}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{answer}<|return|>"
    )


def conversation(cells):
    """The conversation's rows: not the prompt (its cursor blinks), the status bar or the
    turn's footer, whose timings differ from run to run."""
    rows = cells[: SIZE[1] - 6]
    return [row for row in rows if "tok/s" not in "".join(ch for ch, _ in row)]


def block_texts(document) -> str:
    """Everything a document shows: its frozen copies and its live blocks, in order."""
    parts = []
    for child in document.children:
        if isinstance(child, FrozenBlocks) and child.display:
            parts.append(child.text)
        elif isinstance(child, MarkdownBlock) and child.display:
            parts.extend(block._content.plain for block in child.query(MarkdownBlock))
            parts.append(child._content.plain)
    return "\n".join(parts)


async def run_long_turn(encoding, make_test_app) -> list:
    """Stream the long turn; return the screen cells scrolled to the top, middle and end."""
    app = make_test_app(build_session(encoding, [long_completion()]))
    shots = []
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "How does the cache behave?")
        await finish_turn(pilot)
        await pilot.pause(0.2)
        log = app.query_one(ChatLog)
        for y in (0, log.max_scroll_y // 2, log.max_scroll_y):
            log.scroll_to(y=y, animate=False)
            await pilot.pause(0.1)
            shots.append(screen_cells(app))
        turn = app.query_one(TurnView)
        frozen = list(turn.query(FrozenBlocks))
        texts = block_texts(turn.answer.query_one(streamed_markdown.StreamedMarkdown))
        analysis = block_texts(turn.analysis.markdown)
    return shots, frozen, texts, analysis


async def test_long_turn_freezes_blocks_and_looks_the_same(encoding, make_test_app, monkeypatch):
    shots, frozen, answer, analysis = await run_long_turn(encoding, make_test_app)

    assert frozen, "a turn of ~100 blocks froze none"
    for n in range(1, SECTIONS):  # nothing lost in the frozen copies
        assert f"Part {n}\n" in answer + "\n"
        assert f"Step {n}:" in analysis

    monkeypatch.setattr(streamed_markdown, "FREEZE_AT", 10_000)
    unfrozen_shots, none_frozen, _, _ = await run_long_turn(encoding, make_test_app)
    assert not none_frozen
    assert [conversation(shot) for shot in shots] == [conversation(s) for s in unfrozen_shots]


async def test_collapsing_the_analysis_hides_and_restores_frozen_text(encoding, make_test_app):
    app = make_test_app(build_session(encoding, [long_completion()]))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "How does the cache behave?")
        await finish_turn(pilot)
        await pilot.pause(streamed_markdown.SETTLE_SECONDS + 0.3)  # the last copies are made
        turn = app.query_one(TurnView)
        frozen = turn.analysis.query(FrozenBlocks).first()
        log = app.query_one(ChatLog)
        log.scroll_home(animate=False)
        await wait_until(pilot, lambda: bool(frozen.region))
        await pilot.pause(0.1)
        expanded = conversation(screen_cells(app))

        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: turn.analysis.collapsed and not frozen.region)

        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: not turn.analysis.collapsed)
        log.scroll_home(animate=False)
        await wait_until(pilot, lambda: frozen.display and bool(frozen.region))
        await pilot.pause(0.1)
        assert conversation(screen_cells(app)) == expanded


class OneTurn(App):
    def compose(self) -> ComposeResult:
        yield ChatLog()


async def test_text_buffered_when_the_turn_ends_is_written():
    """The turn can end between two frames, with deltas still in the buffers: finish writes
    them, whatever the pacing says."""
    app = OneTurn()
    async with app.run_test(size=SIZE) as pilot:
        turn = await app.query_one(ChatLog).add_turn(analysis_collapsed=False)
        await turn.start_channel("analysis", None)
        turn.add_reasoning("Thinking about it.")
        await turn.start_channel("final", None)
        for word in ["The", "answer", "is", "**42**."]:
            turn.add_answer(word + " ")
        await turn.finish(TurnDone("The answer is 42."))
        await pilot.pause()

        answer = turn.answer.query_one(streamed_markdown.StreamedMarkdown)
        assert block_texts(answer).strip() == "The answer is 42."
        assert block_texts(turn.analysis.markdown).strip() == "Thinking about it."
        assert not answer.has_pending


async def test_an_analysis_collapsed_while_streaming_is_frozen_once_expanded(
    encoding, make_test_app
):
    app = make_test_app(build_session(encoding, [long_completion()]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")  # new turns start collapsed
        await submit(pilot, "How does the cache behave?")
        await finish_turn(pilot)
        await pilot.pause(streamed_markdown.SETTLE_SECONDS + 0.3)
        turn = app.query_one(TurnView)
        assert turn.analysis.collapsed
        assert not turn.analysis.query(FrozenBlocks)  # never laid out: nothing to copy

        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: bool(turn.analysis.query(FrozenBlocks)))
        for n in range(1, SECTIONS):
            assert f"Step {n}:" in block_texts(turn.analysis.markdown)
