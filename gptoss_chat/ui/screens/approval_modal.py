"""Approve a tool call: Python code highlighted, a browser query or URL, or any text preview."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from gptoss_chat.ui.screens.decision_modal import DecisionModal
from gptoss_chat.ui.widgets.tool_block import proposal_renderable

_KIND_LABEL = {"code": "code", "url": "address", "diff": "changes", "text": "request"}


class ApprovalModal(DecisionModal):
    def compose(self) -> ComposeResult:
        proposal = self.proposal
        with Vertical(id="decision-dialog"):
            yield Label(f"{proposal.tool} wants to run", id="decision-heading")
            yield Label(proposal.title, id="decision-title", markup=False)
            kind = _KIND_LABEL.get(proposal.preview_kind, "request")
            yield Label(
                f"{kind} · to {proposal.call.recipient}",
                classes="decision-caption",
                markup=False,
            )
            with VerticalScroll(id="decision-preview"):
                yield Static(proposal_renderable(proposal), id="preview-body")
            yield from self.decision_controls()
