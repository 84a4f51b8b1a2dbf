"""Property-based fuzzing of apply_patch against a scratch tree.

Whatever text arrives, the tool must: raise nothing but ToolCallError (from propose), never
write outside the root, and either change exactly what its plan says or change nothing at all.
A successful patch must also undo back to the exact starting tree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gptoss_chat.tools.apply_patch import RECIPIENT, ApplyPatchTool
from gptoss_chat.tools.base import ToolCall, ToolCallError
from gptoss_chat.tools.patch import PatchError, parse_patch
from tests.tools.apply_patch._tree import snapshot

FILES = {
    "a.txt": "alpha\nbeta\ngamma\nbeta\ndelta\n",
    "sub/b.py": "def f():\n    return 1\n\ndef g():\n    return 1\n",
    "c.txt": "one\r\ntwo\r\nthree\r\n",
    "d.txt": "no final newline",
}

VALID_PATCHES = [
    "*** Begin Patch\n*** Update File: a.txt\n@@\n alpha\n-beta\n+BETA\n gamma\n*** End Patch\n",
    "*** Begin Patch\n*** Update File: sub/b.py\n@@ def g():\n-    return 1\n+    return 2\n"
    "*** End Patch\n",
    "*** Begin Patch\n*** Add File: new/dir/e.txt\n+hello\n+world\n*** Delete File: c.txt\n"
    "*** End Patch\n",
    "*** Begin Patch\n*** Update File: c.txt\n*** Move to: moved/c.txt\n@@\n one\n-two\n+TWO\n"
    "*** Update File: d.txt\n@@\n-no final newline\n+replaced\n*** End of File\n*** End Patch\n",
    "*** Begin Patch\n*** Update File: a.txt\n@@\n-beta\n+B1\n@@\n-beta\n+B2\n delta\n"
    "*** Delete File: sub/b.py\n*** End Patch\n",
]

PATHS = [
    "a.txt",
    "sub/b.py",
    "c.txt",
    "d.txt",
    "new.txt",
    "sub/new/x.txt",
    "../escape.txt",
    "sub/../../escape.txt",
    "/tmp/absolute.txt",
    "link_out/secret.txt",
    "link_out",
    "sub",
    "",
]
MARKERS = [
    "*** Begin Patch",
    "*** End Patch",
    "*** Add File: ",
    "*** Update File: ",
    "*** Delete File: ",
    "*** Move to: ",
    "*** End of File",
    "@@",
    "@@ def g():",
    "@@ -1,3 +1,3 @@",
]
CONTENT_LINES = [line for text in FILES.values() for line in text.splitlines()]

path_strategy = st.sampled_from(PATHS) | st.text(max_size=12)
line_strategy = st.one_of(
    st.sampled_from(MARKERS),
    st.builds(lambda marker, path: marker + path, st.sampled_from(MARKERS[2:6]), path_strategy),
    st.builds(
        lambda prefix, text: prefix + text,
        st.sampled_from([" ", "-", "+", ""]),
        st.sampled_from(CONTENT_LINES) | st.text(max_size=20),
    ),
    st.text(max_size=30),
)


@st.composite
def random_patches(draw: st.DrawFn) -> str:
    body = draw(st.lists(line_strategy, max_size=14))
    if draw(st.booleans()):
        body = ["*** Begin Patch", *body, "*** End Patch"]
    return "\n".join(body) + draw(st.sampled_from(["", "\n", "\r\n"]))


@st.composite
def mutated_patches(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(VALID_PATCHES)).split("\n")
    for _ in range(draw(st.integers(0, 3))):
        index = draw(st.integers(0, max(len(lines) - 1, 0)))
        mutation = draw(st.sampled_from(["drop", "duplicate", "insert", "swap", "edit", "cut"]))
        if not lines:
            break
        if mutation == "drop":
            del lines[index]
        elif mutation == "duplicate":
            lines.insert(index, lines[index])
        elif mutation == "insert":
            lines.insert(index, draw(line_strategy))
        elif mutation == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif mutation == "edit":
            line = lines[index]
            at = draw(st.integers(0, len(line)))
            lines[index] = line[:at] + draw(st.text(max_size=3)) + line[at + 1 :]
        else:
            lines = lines[: index + 1]
    separator = draw(st.sampled_from(["\n", "\r\n"]))
    return separator.join(lines)


def make_tree(base: Path) -> tuple[Path, Path]:
    root, outside = base / "root", base / "outside"
    for relative, text in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(text.encode())
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "link_out").symlink_to(outside)
    return root, outside


def check_patch_is_safe(patch_text: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        root, outside = make_tree(base)
        before, outside_before = snapshot(root), snapshot(outside)
        tool = ApplyPatchTool(root)
        try:
            proposal = tool.propose(ToolCall(RECIPIENT, patch_text))
        except ToolCallError as exc:
            assert str(exc).strip()
            event("refused at propose")
            proposal = None
        assert snapshot(root) == before, "propose must not write"
        if proposal is not None:
            result = tool.run(proposal)
            after = snapshot(root)
            event("failed at run" if result.is_error else "applied")
            if result.is_error:
                assert after == before, "a failed patch changed files"
            else:
                expected = dict(before)
                for edit in proposal.payload.edits:
                    relative = edit.path.relative_to(tool.root).as_posix()
                    if edit.after is None:
                        expected.pop(relative, None)
                    else:
                        expected[relative] = edit.after
                assert after == expected, "the tree differs from the approved plan"
                tool.undo()
                assert snapshot(root) == before, "undo did not restore the tree"
        assert snapshot(outside) == outside_before, "wrote outside the root"
        assert sorted(path.name for path in base.iterdir()) == ["outside", "root"]


FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@FUZZ_SETTINGS
@given(random_patches())
def test_random_patch_text_is_handled_safely(patch_text: str) -> None:
    check_patch_is_safe(patch_text)


@FUZZ_SETTINGS
@given(mutated_patches())
def test_mutated_valid_patches_are_handled_safely(patch_text: str) -> None:
    check_patch_is_safe(patch_text)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_parser_raises_only_patch_errors(text: str) -> None:
    try:
        parse_patch(text)
    except PatchError as exc:
        assert str(exc)


def test_every_seed_patch_applies_cleanly(tmp_path: Path) -> None:
    """The mutation seeds must be valid, or mutating them proves little."""
    for index, patch_text in enumerate(VALID_PATCHES):
        root, _ = make_tree(tmp_path / str(index))
        tool = ApplyPatchTool(root)
        result = tool.run(tool.propose(ToolCall(RECIPIENT, patch_text)))
        assert not result.is_error, result.messages[0].content[0].text
