"""The approval preview is a real unified diff: same layout as difflib, and `git apply` turns
the old file into exactly the file apply_patch writes."""

from __future__ import annotations

import difflib
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptoss_chat.tools.apply_patch import RECIPIENT, ApplyPatchTool
from gptoss_chat.tools.base import ToolCall
from gptoss_chat.tools.patch.diff import unified_diff

# Few distinct lines, so files repeat themselves and matching has to pick among candidates.
small_lines = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "d\n", "e\n", "\n"]), max_size=30)


@settings(max_examples=300, deadline=None, database=None)
@given(small_lines, small_lines)
def test_layout_matches_difflib(old: list[str], new: list[str]) -> None:
    expected = list(difflib.unified_diff(old, new, "a/f", "b/f", n=3))
    assert unified_diff(old, new, "a/f", "b/f") == expected


@st.composite
def file_and_patch(draw: st.DrawFn) -> tuple[str, str]:
    """An LF text file and a V4A patch with random edits at random places in it."""
    lines = draw(st.lists(st.sampled_from(["x = 1", "y = 2", "", "z", "pass"]), min_size=1))
    lines = [f"{line} # {i}" if draw(st.booleans()) else line for i, line in enumerate(lines)]
    # A final empty line without a final newline would just be a final newline.
    ends_with_newline = draw(st.booleans()) or lines[-1] == ""
    text = "\n".join(lines) + ("\n" if ends_with_newline else "")
    hunks, position = [], 0
    while position < len(lines) and len(hunks) < 4:
        start = draw(st.integers(position, len(lines) - 1))
        removed = draw(st.integers(0, min(3, len(lines) - start)))
        before = draw(st.integers(0, min(3, start - position)))
        after = draw(st.integers(0, min(3, len(lines) - start - removed)))
        added = draw(st.lists(st.sampled_from(["new", "  indented", ""]), max_size=3))
        if not removed and not added:
            added = ["inserted"]
        body = [" " + line for line in lines[start - before : start]]
        body += ["-" + line for line in lines[start : start + removed]]
        body += ["+" + line for line in added]
        body += [" " + line for line in lines[start + removed : start + removed + after]]
        if not (before or removed or after):
            break  # a pure insertion without context would be appended at the end instead
        hunks.append("@@\n" + "\n".join(body))
        position = start + removed + after
    if not hunks:
        hunks = ["@@\n+appended"]
    patch = "*** Begin Patch\n*** Update File: f.txt\n" + "\n".join(hunks) + "\n*** End Patch\n"
    return text, patch


NO_FINAL_NEWLINE_CASES = [
    ("x = 1\n" * 12 + "y = 2", "@@\n-y = 2\n"),  # the new last line loses its newline
    ("x = 1", "@@\n+appended\n"),  # the old last line gains one
    ("a\nb", "@@\n-b\n+c\n+d\n"),
    ("a\nb\nc", "@@\n-a\n"),
]


@pytest.mark.parametrize(("text", "hunks"), NO_FINAL_NEWLINE_CASES)
def test_files_without_final_newline(text: str, hunks: str) -> None:
    patch = f"*** Begin Patch\n*** Update File: f.txt\n{hunks}*** End Patch\n"
    check_preview_with_git_apply(text, patch)


@settings(max_examples=100, deadline=None, database=None)
@given(file_and_patch())
def test_git_apply_of_the_preview_gives_the_written_file(case: tuple[str, str]) -> None:
    check_preview_with_git_apply(*case)


def check_preview_with_git_apply(text: str, patch: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        ours, theirs = Path(scratch, "ours"), Path(scratch, "theirs")
        for root in (ours, theirs):
            root.mkdir()
            (root / "f.txt").write_text(text)
        tool = ApplyPatchTool(ours)
        proposal = tool.propose(ToolCall(RECIPIENT, patch))
        result = tool.run(proposal)
        assert not result.is_error
        (Path(scratch) / "preview.diff").write_text(proposal.preview)
        if (ours / "f.txt").read_bytes() == text.encode():
            assert "@@" not in proposal.preview
            return
        done = subprocess.run(
            ["git", "apply", "--whitespace=nowarn", str(Path(scratch) / "preview.diff")],
            cwd=theirs,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr + proposal.preview
        assert (theirs / "f.txt").read_bytes() == (ours / "f.txt").read_bytes()
