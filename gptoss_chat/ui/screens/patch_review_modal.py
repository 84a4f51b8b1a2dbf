"""Review a patch before apply_patch writes it: file list with +/- counts, per-file diffs."""

from __future__ import annotations

from rich.syntax import Syntax
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from gptoss_chat.tools.base import Proposal
from gptoss_chat.ui.diffs import FileDiff, split_diff
from gptoss_chat.ui.screens.decision_modal import DecisionModal


def diff_renderable(diff: str) -> Syntax:
    return Syntax(diff, "diff", theme="ansi_dark", word_wrap=False, background_color="default")


class PatchReviewModal(DecisionModal):
    def __init__(self, proposal: Proposal) -> None:
        super().__init__(proposal)
        self.files: list[FileDiff] = split_diff(proposal.preview)

    def compose(self) -> ComposeResult:
        added = sum(f.added for f in self.files)
        removed = sum(f.removed for f in self.files)
        count = len(self.files)
        with Vertical(id="decision-dialog", classes="-wide"):
            yield Label("Review patch", id="decision-heading")
            yield Label(self.proposal.title, id="decision-title", markup=False)
            yield Label(
                f"{count} file{'s' if count != 1 else ''} · +{added} -{removed}",
                id="patch-totals",
                classes="decision-caption",
            )
            with Horizontal(id="patch-body"):
                yield OptionList(
                    *[Option(f.label, id=str(i)) for i, f in enumerate(self.files)],
                    id="patch-files",
                )
                with VerticalScroll(id="patch-diff"):
                    yield Static(id="patch-diff-body")
            yield from self.decision_controls()

    def on_mount(self) -> None:
        super().on_mount()
        files = self.query_one("#patch-files", OptionList)
        if self.files:
            files.highlighted = 0
            self.show_file(0)

    def show_file(self, index: int) -> None:
        self.query_one("#patch-diff-body", Static).update(diff_renderable(self.files[index].diff))
        self.query_one("#patch-diff", VerticalScroll).scroll_home(animate=False)

    @on(OptionList.OptionHighlighted, "#patch-files")
    def _file_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_file(event.option_index)
