"""Approval modals: approve, deny (with a reason), allow for the session, patch review.

Modal unit tests use a tiny host app and check what the callback received (as oterm's modal
tests do); the flow tests go through the whole app with a real ChatSession.
"""

from __future__ import annotations

from textual.app import App
from textual.widgets import OptionList, Static

from gptoss_chat.conversation import message_text
from gptoss_chat.tools.base import ApprovalChoice, Decision, Proposal, ToolCall
from gptoss_chat.ui.screens.approval_modal import ApprovalModal
from gptoss_chat.ui.screens.patch_review_modal import PatchReviewModal
from tests.ui.conftest import (
    AFTER_TOOL,
    PATCH,
    PATCH_CALL,
    PYTHON_CALL,
    EchoPythonTool,
    FixedPatchTool,
    build_session,
    finish_turn,
    submit,
    wait_until,
)

SIZE = (130, 40)
CODE = Proposal(
    "python", ToolCall("python", "print(1)"), "Run Python code", "print(1)", "code", "python"
)
DIFF = Proposal("apply_patch", ToolCall("functions.apply_patch", ""), "Apply patch", PATCH, "diff")


class ModalHost(App[None]):
    def __init__(self, modal) -> None:
        super().__init__()
        self.modal = modal
        self.results: list[Decision | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.modal, self.results.append)


async def decide(modal, *keys: str) -> list[Decision | None]:
    host = ModalHost(modal)
    async with host.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()
    return host.results


async def test_y_approves():
    assert await decide(ApprovalModal(CODE), "y") == [Decision.approve()]


async def test_a_allows_for_session():
    assert await decide(ApprovalModal(CODE), "a") == [Decision.allow_session()]


async def test_n_denies_and_esc_denies_without_reason():
    assert await decide(ApprovalModal(CODE), "n") == [Decision.deny()]
    assert await decide(ApprovalModal(CODE), "escape") == [Decision.deny()]


async def test_deny_with_reason():
    keys = ["r", *"no network", "enter"]
    keys = ["space" if k == " " else k for k in keys]
    assert await decide(ApprovalModal(CODE), *keys) == [Decision.deny("no network")]


async def test_code_preview_is_highlighted():
    from rich.syntax import Syntax

    host = ModalHost(ApprovalModal(CODE))
    async with host.run_test(size=SIZE) as pilot:
        await pilot.pause()
        body = host.screen.query_one("#preview-body", Static)
        assert isinstance(body.content, Syntax)
        assert body.content.lexer.name.lower() == "python"


async def test_patch_review_lists_files_with_counts_and_switches_diffs():
    modal = PatchReviewModal(DIFF)
    host = ModalHost(modal)
    async with host.run_test(size=SIZE) as pilot:
        await pilot.pause()
        files = modal.query_one("#patch-files", OptionList)
        labels = [str(files.get_option_at_index(i).prompt) for i in range(files.option_count)]
        assert labels == ["+2 -1  src/app.py", "+2 -0  README.md"]
        assert "3 file" not in str(modal.query_one("#patch-totals").render())
        assert "+4 -1" in str(modal.query_one("#patch-totals").render())
        body = modal.query_one("#patch-diff-body", Static)
        assert "src/app.py" in body.content.code and "README" not in body.content.code
        files.focus()
        await pilot.press("down")
        assert "+# Demo" in body.content.code
        await pilot.press("y")
        await pilot.pause()
    assert host.results == [Decision.approve()]


# -- whole flows ------------------------------------------------------------------------------


async def test_approve_runs_the_tool_and_the_turn_continues(encoding, make_test_app):
    python = EchoPythonTool()
    session = build_session(encoding, [PYTHON_CALL, AFTER_TOOL], tools=[python])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "compute")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal))
        assert python.runs == []  # nothing runs before the user decides
        assert "waiting for approval" in app.query_one("StatusBar").state
        await pilot.press("y")
        await finish_turn(pilot)
        assert python.runs == ["print(6 * 7)"]
        assert session.last_final_text() == "The answer is **42**."


async def test_tool_title_behind_the_modal_spans_its_row(encoding, make_test_app):
    """The title grows ("writing…" -> "awaiting approval · Run Python code") just before the
    modal opens. Sized to its text, it sometimes kept its old width behind the modal (the
    snapshot cut it after "awaiting"); spanning the row, it needs no new layout."""
    session = build_session(encoding, [PYTHON_CALL, AFTER_TOOL], tools=[EchoPythonTool()])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "compute")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal))
        block = app.screen_stack[0].query_one(".tool-block")
        title = block.query_one("CollapsibleTitle")
        assert "awaiting approval · Run Python code" in block.title
        assert title.region.width == block.content_region.width
        assert title.region.width >= len(block.title) + 2


async def test_deny_with_reason_reaches_the_model(encoding, make_test_app):
    python = EchoPythonTool()
    session = build_session(encoding, [PYTHON_CALL, AFTER_TOOL], tools=[python])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "compute")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal))
        await pilot.press("r", *"too", "space", *"slow", "enter")
        await finish_turn(pilot)
        assert python.runs == []
        tool_texts = [message_text(e.message) for e in session.entries if e.message.author.name]
        assert any("Reason: too slow" in text for text in tool_texts)
        block = app.query_one(".tool-block")
        assert "declined (too slow)" in block.title
        assert "Reason: too slow" in session.encoding.decode(session.generator.prompts[-1])


async def test_allow_for_session_skips_later_approvals(encoding, make_test_app):
    python = EchoPythonTool()
    scripts = [PYTHON_CALL, AFTER_TOOL, PYTHON_CALL, AFTER_TOOL]
    session = build_session(encoding, scripts, tools=[python])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "compute")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal))
        await pilot.press("a")
        await finish_turn(pilot)
        await submit(pilot, "again")
        # A modal would block the turn and make this wait time out.
        await finish_turn(pilot)
        assert python.runs == ["print(6 * 7)", "print(6 * 7)"]
        assert not isinstance(app.screen, ApprovalModal)


async def test_patch_review_flow(encoding, make_test_app):
    patch = FixedPatchTool()
    session = build_session(encoding, [PATCH_CALL, AFTER_TOOL], tools=[patch])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "edit")
        await wait_until(pilot, lambda: isinstance(app.screen, PatchReviewModal))
        assert patch.runs == 0
        await pilot.press("n")
        await finish_turn(pilot)
        assert patch.runs == 0
        assert session.entries[-1].message.channel == "final"


async def test_escape_on_modal_denies_and_turn_goes_on(encoding, make_test_app):
    python = EchoPythonTool()
    session = build_session(encoding, [PYTHON_CALL, AFTER_TOOL], tools=[python])
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "compute")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal))
        await pilot.press("escape")
        await finish_turn(pilot)
        assert python.runs == []
        assert session.last_final_text() == "The answer is **42**."


async def test_approval_choices_map_to_core_enum():
    assert Decision.allow_session().choice is ApprovalChoice.ALLOW_SESSION
