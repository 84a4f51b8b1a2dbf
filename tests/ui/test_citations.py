"""Browser citations in the final answer become links once the turn ends."""

from __future__ import annotations

from gptoss_chat.tools.browser.backends import make_backend
from gptoss_chat.tools.browser.pages import Page
from gptoss_chat.tools.browser.tool import BrowserTool
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import build_session, finish_turn, submit

CITED = (
    "<|channel|>analysis<|message|>The page says so.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Python 3.13 added a new REPL "
    "【0†L1-L2】.<|return|>"
)


async def test_citations_link_to_their_source(encoding, make_test_app):
    # The backend is never used: citations resolve against the pages already in the history.
    browser = BrowserTool(make_backend("keyless"))
    browser.history.pages.append(
        Page(
            url="https://docs.python.org/3.13/whatsnew/3.13.html",
            title="What's New In Python 3.13",
            text="Summary\nA better interactive interpreter\nbased on PyPy's\n",
        )
    )
    session = build_session(encoding, [CITED], tools=[browser])
    app = make_test_app(session)
    async with app.run_test(size=(130, 40)) as pilot:
        await submit(pilot, "What is new in 3.13?")
        await finish_turn(pilot)
        turn = app.query_one(TurnView)
        [segment] = turn.answer.query(".answer-text.-final")
        rendered = segment.source
        assert "[[1]](https://docs.python.org/3.13/whatsnew/3.13.html)" in rendered
        assert "1. [What's New In Python 3.13]" in rendered
        assert "【" not in rendered
        # What the model wrote (and what copy and export use) is unchanged.
        assert "【0†L1-L2】" in session.last_final_text()


async def test_without_a_browser_citations_stay_as_written(encoding, make_test_app):
    session = build_session(encoding, [CITED])
    app = make_test_app(session)
    async with app.run_test(size=(130, 40)) as pilot:
        await submit(pilot, "What is new in 3.13?")
        await finish_turn(pilot)
        [segment] = app.query_one(TurnView).answer.query(".answer-text.-final")
        assert "【0†L1-L2】" in segment.source
