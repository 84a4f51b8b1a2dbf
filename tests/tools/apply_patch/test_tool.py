"""The apply_patch tool behind the Tool interface: contract, confinement, atomicity, undo."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from openai_harmony import Conversation, DeveloperContent, Message, Role

from gptoss_chat.tools.apply_patch import RECIPIENT, ApplyPatchTool
from gptoss_chat.tools.base import ToolCall, ToolCallError, ToolRegistry
from gptoss_chat.tools.patch import PatchError, PatchPlan
from gptoss_chat.tools.patch.apply import FileOperations
from tests.tools.apply_patch._tree import snapshot

MULTI_FILE_PATCH = """*** Begin Patch
*** Add File: docs/new/notes.md
+# Notes
*** Update File: src/app.py
@@ def greet():
-    print("Hi")
+    print("Hello")
*** Update File: src/old_name.py
*** Move to: pkg/sub/new_name.py
@@
-VALUE = 1
+VALUE = 2
*** Delete File: obsolete.txt
*** End Patch
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text('def greet():\n    print("Hi")\n')
    (root / "src" / "old_name.py").write_text("VALUE = 1\n")
    (root / "obsolete.txt").write_text("old\n")
    os.chmod(root / "src" / "app.py", 0o755)
    return root


def call(text: str) -> ToolCall:
    return ToolCall(RECIPIENT, text)


def message_text(result) -> str:
    return result.messages[0].content[0].text


def test_function_description_renders_as_a_string_function(harmony_encoding) -> None:
    tool = ApplyPatchTool(Path.cwd())
    developer = DeveloperContent.new().with_function_tools(tool.function_descriptions())
    conversation = Conversation.from_messages(
        [Message.from_role_and_content(Role.DEVELOPER, developer)]
    )
    rendered = harmony_encoding.decode(harmony_encoding.render_conversation(conversation))
    assert "namespace functions {" in rendered
    assert "type apply_patch = (_: string) => any;" in rendered
    for marker in ("*** Begin Patch", "*** Update File: ", "*** Move to: ", "*** End of File"):
        assert marker in rendered


def test_instructions_can_go_to_the_developer_message_instead(harmony_encoding) -> None:
    tool = ApplyPatchTool(Path.cwd(), instructions_in_description=False)
    developer = (
        DeveloperContent.new()
        .with_instructions(tool.instructions)
        .with_function_tools(tool.function_descriptions())
    )
    conversation = Conversation.from_messages(
        [Message.from_role_and_content(Role.DEVELOPER, developer)]
    )
    rendered = harmony_encoding.decode(harmony_encoding.render_conversation(conversation))
    instructions, _, tools = rendered.partition("# Tools")
    assert "*** Begin Patch" in instructions
    assert "// Patch a file\ntype apply_patch = (_: string) => any;" in tools
    assert "*** Begin Patch" not in tools


def test_registry_routes_functions_apply_patch(workspace: Path) -> None:
    registry = ToolRegistry()
    tool = ApplyPatchTool(workspace)
    registry.add(tool)
    assert registry.for_recipient("functions.apply_patch") is tool
    assert registry.for_recipient("functions.other") is None


def test_propose_previews_a_diff_and_writes_nothing(workspace: Path) -> None:
    before = snapshot(workspace)
    proposal = ApplyPatchTool(workspace).propose(call(MULTI_FILE_PATCH))
    assert snapshot(workspace) == before
    assert proposal.tool == "apply_patch"
    assert proposal.preview_kind == "diff"
    assert isinstance(proposal.payload, PatchPlan)
    assert proposal.preview == proposal.payload.diff
    assert "4 files" in proposal.title
    assert '-    print("Hi")\n+    print("Hello")\n' in proposal.preview
    assert "rename from src/old_name.py\nrename to pkg/sub/new_name.py\n" in proposal.preview
    assert "--- a/obsolete.txt\n+++ /dev/null\n" in proposal.preview
    assert "--- /dev/null\n+++ b/docs/new/notes.md\n" in proposal.preview


def test_run_applies_and_answers_like_the_model_expects(workspace: Path) -> None:
    tool = ApplyPatchTool(workspace)
    result = tool.run(tool.propose(call(MULTI_FILE_PATCH)))
    assert not result.is_error
    assert result.summary == "Done! 4 files changed"
    message = result.messages[0]
    assert message.author.role == Role.TOOL
    assert message.author.name == RECIPIENT
    assert message.recipient == "assistant"
    assert message.channel == "commentary"
    assert message_text(result) == (
        "Done!\nA docs/new/notes.md (+1 -0)\nM src/app.py (+1 -1)\n"
        "R src/old_name.py -> pkg/sub/new_name.py (+1 -1)\nD obsolete.txt (+0 -1)"
    )
    assert snapshot(workspace) == {
        "docs/new/notes.md": b"# Notes\n",
        "pkg/sub/new_name.py": b"VALUE = 2\n",
        "src/app.py": b'def greet():\n    print("Hello")\n',
    }


@pytest.mark.parametrize("key", ["patch", "input"])
def test_json_wrapped_patch_is_accepted(workspace: Path, key: str) -> None:
    tool = ApplyPatchTool(workspace)
    result = tool.run(tool.propose(call(json.dumps({key: MULTI_FILE_PATCH}))))
    assert message_text(result).startswith("Done!")


def test_json_without_a_patch_is_a_clear_error(workspace: Path) -> None:
    with pytest.raises(ToolCallError, match="hold no patch"):
        ApplyPatchTool(workspace).propose(call('{"a": 1, "b": 2}'))


def test_errors_go_back_to_the_model_with_file_and_lines(workspace: Path) -> None:
    patch = "*** Begin Patch\n*** Update File: src/app.py\n@@\n-    print('nope')\n*** End Patch"
    with pytest.raises(ToolCallError) as error:
        ApplyPatchTool(workspace).propose(call(patch))
    assert "src/app.py" in str(error.value)
    assert "    print('nope')" in str(error.value)


def test_default_root_is_the_current_directory(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    assert ApplyPatchTool().root == workspace.resolve()


def test_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PatchError, match="does not exist"):
        ApplyPatchTool(tmp_path / "nope")


# --- confinement and refusals ------------------------------------------------------------


@pytest.mark.parametrize(
    "section",
    [
        "*** Update File: link_out/secret.txt\n@@\n-secret\n+stolen",
        "*** Delete File: link_out/secret.txt",
        "*** Add File: link_out/new.txt\n+planted",
        "*** Update File: file_link\n@@\n-secret\n+stolen",
        "*** Update File: inside.txt\n*** Move to: link_out/moved.txt\n@@\n-in\n+out",
    ],
)
def test_symlinks_pointing_out_are_refused(tmp_path: Path, section: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "inside.txt").write_text("in\n")
    (root / "link_out").symlink_to(outside)
    (root / "file_link").symlink_to(outside / "secret.txt")
    before_outside, before_root = snapshot(outside), snapshot(root)
    with pytest.raises(ToolCallError, match="resolves outside the workspace"):
        ApplyPatchTool(root).propose(call(f"*** Begin Patch\n{section}\n*** End Patch\n"))
    assert snapshot(outside) == before_outside
    assert snapshot(root) == before_root


def test_symlink_inside_the_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f.txt").write_text("a\n")
    (root / "alias").symlink_to(root / "real")
    tool = ApplyPatchTool(root)
    patch = "*** Begin Patch\n*** Update File: alias/f.txt\n@@\n-a\n+b\n*** End Patch"
    assert message_text(tool.run(tool.propose(call(patch)))).startswith("Done!")
    assert (root / "real" / "f.txt").read_text() == "b\n"
    assert (root / "alias").is_symlink()


def test_binary_files_are_refused(workspace: Path) -> None:
    (workspace / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    patch = "*** Begin Patch\n*** Delete File: image.png\n*** End Patch"
    with pytest.raises(ToolCallError, match=r"image\.png: is a binary file"):
        ApplyPatchTool(workspace).propose(call(patch))


def test_non_utf8_files_are_refused(workspace: Path) -> None:
    (workspace / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    patch = "*** Begin Patch\n*** Update File: latin1.txt\n@@\n-x\n+y\n*** End Patch"
    with pytest.raises(ToolCallError, match=r"latin1\.txt: is not UTF-8 text"):
        ApplyPatchTool(workspace).propose(call(patch))


def test_files_over_the_size_limit_are_refused(workspace: Path) -> None:
    (workspace / "big.txt").write_text("x\n" * 600)
    patch = "*** Begin Patch\n*** Update File: big.txt\n@@\n-x\n+y\n*** End Patch"
    with pytest.raises(ToolCallError, match=r"big\.txt: 1200 bytes is over the 1000-byte limit"):
        ApplyPatchTool(workspace, max_file_bytes=1000).propose(call(patch))


# --- atomicity ---------------------------------------------------------------------------


def test_modes_are_preserved_and_new_files_get_the_default(workspace: Path) -> None:
    os.chmod(workspace / "src" / "old_name.py", 0o750)
    tool = ApplyPatchTool(workspace)
    tool.run(tool.propose(call(MULTI_FILE_PATCH)))
    assert stat.S_IMODE((workspace / "src" / "app.py").stat().st_mode) == 0o755
    assert stat.S_IMODE((workspace / "pkg" / "sub" / "new_name.py").stat().st_mode) == 0o750
    umask = os.umask(0)
    os.umask(umask)
    new_mode = stat.S_IMODE((workspace / "docs" / "new" / "notes.md").stat().st_mode)
    assert new_mode == 0o666 & ~umask


def test_a_file_changed_after_review_stops_the_whole_patch(workspace: Path) -> None:
    tool = ApplyPatchTool(workspace)
    proposal = tool.propose(call(MULTI_FILE_PATCH))
    (workspace / "obsolete.txt").write_text("edited by the user meanwhile\n")
    before = snapshot(workspace)
    result = tool.run(proposal)
    assert result.is_error
    assert "changed since the patch was planned, so nothing was written: obsolete.txt\n" in (
        message_text(result)
    )
    assert snapshot(workspace) == before
    assert not tool.can_undo


class FailingOperations(FileOperations):
    """The real disk, except that the n-th commit or removal raises."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.count = 0

    def _tick(self) -> None:
        self.count += 1
        if self.count == self.fail_at:
            raise OSError(28, "No space left on device")

    def commit(self, temporary: Path, target: Path) -> None:
        self._tick()
        super().commit(temporary, target)

    def remove(self, target: Path) -> None:
        self._tick()
        super().remove(target)


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5])
def test_failure_half_way_rolls_every_file_back(workspace: Path, fail_at: int) -> None:
    # The multi-file patch makes 5 disk steps: add, update, move (write + remove), delete.
    modes = {path: path.stat().st_mode for path in workspace.rglob("*")}
    before = snapshot(workspace)
    tool = ApplyPatchTool(workspace, file_operations=FailingOperations(fail_at))
    result = tool.run(tool.propose(call(MULTI_FILE_PATCH)))
    assert result.is_error
    assert "No space left on device" in message_text(result)
    assert "every file was restored" in message_text(result)
    assert snapshot(workspace) == before
    assert {path: path.stat().st_mode for path in workspace.rglob("*")} == modes, (
        "no leftover temporary files or directories, modes restored"
    )


# --- undo ----------------------------------------------------------------------------------


def test_undo_restores_the_tree_exactly(workspace: Path) -> None:
    before = snapshot(workspace)
    entries = sorted(workspace.rglob("*"))
    tool = ApplyPatchTool(workspace)
    tool.run(tool.propose(call(MULTI_FILE_PATCH)))
    assert snapshot(workspace) != before
    text = tool.undo()
    assert text.startswith("Reverted the last patch:\n")
    assert "R src/old_name.py -> pkg/sub/new_name.py" in text
    assert snapshot(workspace) == before
    assert sorted(workspace.rglob("*")) == entries, "directories the patch created are gone"
    assert stat.S_IMODE((workspace / "src" / "app.py").stat().st_mode) == 0o755
    with pytest.raises(PatchError, match="nothing to undo"):
        tool.undo()


def test_undo_goes_back_one_patch_at_a_time(workspace: Path) -> None:
    tool = ApplyPatchTool(workspace)
    first = "*** Begin Patch\n*** Update File: obsolete.txt\n@@\n-old\n+one\n*** End Patch"
    second = "*** Begin Patch\n*** Update File: obsolete.txt\n@@\n-one\n+two\n*** End Patch"
    tool.run(tool.propose(call(first)))
    tool.run(tool.propose(call(second)))
    tool.undo()
    assert (workspace / "obsolete.txt").read_text() == "one\n"
    tool.undo()
    assert (workspace / "obsolete.txt").read_text() == "old\n"


def test_undo_refuses_when_the_user_edited_a_file_since(workspace: Path) -> None:
    tool = ApplyPatchTool(workspace)
    tool.run(tool.propose(call(MULTI_FILE_PATCH)))
    (workspace / "src" / "app.py").write_text("user edit\n")
    after_edit = snapshot(workspace)
    with pytest.raises(PatchError, match=r"changed since the patch was applied, .*: src/app\.py$"):
        tool.undo()
    assert snapshot(workspace) == after_edit
    assert tool.can_undo, "the record is kept so the user can retry"


def test_a_failing_undo_changes_nothing_and_can_be_retried(workspace: Path) -> None:
    before = snapshot(workspace)
    # Apply takes 5 disk steps; the 7th (the 2nd step of the undo) fails.
    tool = ApplyPatchTool(workspace, file_operations=FailingOperations(fail_at=7))
    tool.run(tool.propose(call(MULTI_FILE_PATCH)))
    after_apply = snapshot(workspace)
    with pytest.raises(PatchError, match="every file was restored"):
        tool.undo()
    assert snapshot(workspace) == after_apply
    assert tool.undo().startswith("Reverted the last patch:")
    assert snapshot(workspace) == before


class VanishingDirectoryOperations(FailingOperations):
    """Fails the 3rd step after deleting src/, so rolling back src/app.py cannot work either."""

    def __init__(self, doomed: Path) -> None:
        super().__init__(fail_at=3)
        self.doomed = doomed

    def _tick(self) -> None:
        if self.count + 1 == self.fail_at:
            shutil.rmtree(self.doomed)
        super()._tick()


def test_a_failed_rollback_is_reported_truthfully(workspace: Path) -> None:
    operations = VanishingDirectoryOperations(workspace / "src")
    tool = ApplyPatchTool(workspace, file_operations=operations)
    result = tool.run(tool.propose(call(MULTI_FILE_PATCH)))
    assert result.is_error
    text = message_text(result)
    assert "the rollback failed too" in text
    assert "the rollback failed too: src/app.py: No such file or directory" in text
    assert text.endswith("Some files may be changed.")
    assert "No file was changed" not in text
