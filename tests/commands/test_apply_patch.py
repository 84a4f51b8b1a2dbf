"""`gptoss-chat apply-patch`, run as a real subprocess the way a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

PATCH = """*** Begin Patch
*** Update File: notes.txt
@@
 keep
-old
+new
*** Add File: sub/added.txt
+added
*** End Patch
"""


def apply_patch_command(*args: str, stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gptoss_chat", "apply-patch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "notes.txt").write_text("keep\nold\n")
    return root


def test_dry_run_prints_the_diffs_and_writes_nothing(workspace: Path, tmp_path: Path) -> None:
    done = apply_patch_command("--root", str(workspace), "--dry-run", stdin=PATCH, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--- a/notes.txt\n+++ b/notes.txt\n@@ -1,2 +1,2 @@\n keep\n-old\n+new\n" in done.stdout
    assert "--- /dev/null\n+++ b/sub/added.txt\n" in done.stdout
    assert "dry run: 2 files (notes.txt, sub/added.txt) would change" in done.stdout
    assert (workspace / "notes.txt").read_text() == "keep\nold\n"
    assert not (workspace / "sub").exists()


def test_apply_writes_and_reports_done(workspace: Path) -> None:
    done = apply_patch_command(stdin=PATCH, cwd=workspace)  # default root: the cwd
    assert done.returncode == 0, done.stderr
    assert "-old\n+new\n" in done.stdout
    assert done.stdout.endswith("Done!\nM notes.txt (+1 -1)\nA sub/added.txt (+1 -0)\n")
    assert (workspace / "notes.txt").read_text() == "keep\nnew\n"
    assert (workspace / "sub" / "added.txt").read_text() == "added\n"


def test_a_failing_patch_exits_non_zero_with_the_error(workspace: Path) -> None:
    bad = PATCH.replace(" keep\n-old", " keep\n-not there")
    done = apply_patch_command("--root", str(workspace), stdin=bad, cwd=workspace.parent)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "notes.txt: hunk 1 (patch line 3): could not find these lines" in done.stderr
    assert "  not there" in done.stderr
    assert (workspace / "notes.txt").read_text() == "keep\nold\n"
    assert not (workspace / "sub").exists()


def test_an_escaping_path_exits_non_zero(workspace: Path) -> None:
    escape = "*** Begin Patch\n*** Add File: ../evil.txt\n+x\n*** End Patch\n"
    done = apply_patch_command("--root", str(workspace), stdin=escape, cwd=workspace)
    assert done.returncode == 1
    assert "../evil.txt: resolves outside the workspace" in done.stderr
    assert not (workspace.parent / "evil.txt").exists()


def test_a_missing_root_exits_with_usage_error(tmp_path: Path) -> None:
    done = apply_patch_command("--root", str(tmp_path / "nope"), stdin=PATCH, cwd=tmp_path)
    assert done.returncode == 2
    assert "does not exist" in done.stderr


def test_garbage_on_stdin_is_a_clear_error(workspace: Path) -> None:
    done = apply_patch_command(stdin="hello, world\n", cwd=workspace)
    assert done.returncode == 1
    assert "the first line of the patch must be '*** Begin Patch'" in done.stderr
    assert "Traceback" not in done.stderr
