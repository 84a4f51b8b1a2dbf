"""Splitting combined diffs for the patch review."""

from __future__ import annotations

from gptoss_chat.ui.diffs import split_diff
from tests.ui.conftest import PATCH

PLAIN = """\
--- a/one.txt
+++ b/one.txt
@@ -1 +1 @@
-old
+new
--- a/two.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-gone
--- a line that looks like a header inside a hunk is still content
"""


def test_git_style_diff_splits_per_file_with_counts():
    files = split_diff(PATCH)
    assert [(f.path, f.added, f.removed) for f in files] == [
        ("src/app.py", 2, 1),
        ("README.md", 2, 0),
    ]
    assert files[0].diff.startswith("diff --git a/src/app.py")
    assert "+# Demo" in files[1].diff and "+# Demo" not in files[0].diff
    assert files[0].label == "+2 -1  src/app.py"


def test_plain_unified_diff_and_deletion():
    files = split_diff(PLAIN)
    assert [(f.path, f.added, f.removed) for f in files] == [("one.txt", 1, 1), ("two.txt", 0, 2)]


def test_empty_and_headerless():
    assert split_diff("") == []
    [only] = split_diff("@@ -1 +1 @@\n-a\n+b\n")
    assert (only.path, only.added, only.removed) == ("(patch)", 1, 1)
