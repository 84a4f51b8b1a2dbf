"""The real apply_patch tool through the review modal, then /undo."""

from __future__ import annotations

from gptoss_chat.tools.apply_patch import ApplyPatchTool
from gptoss_chat.ui.screens.patch_review_modal import PatchReviewModal
from tests.ui.conftest import AFTER_TOOL, build_session, finish_turn, submit, wait_until

PATCH_TEXT = """*** Begin Patch
*** Update File: app.py
@@
 import os
-print("hello")
+print("hello, world")
*** Add File: NOTES.md
+# Notes
+Written by the model.
*** End Patch"""
CALL = (
    "<|channel|>analysis<|message|>Edit app.py and add notes.<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.apply_patch<|message|>"
    f"{PATCH_TEXT}<|call|>"
)


async def test_review_approve_then_undo(encoding, make_test_app, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text('import os\nprint("hello")\n')
    session = build_session(encoding, [CALL, AFTER_TOOL], tools=[ApplyPatchTool(workspace)])
    app = make_test_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await submit(pilot, "greet the world and take notes")
        await wait_until(pilot, lambda: isinstance(app.screen, PatchReviewModal))
        modal = app.screen
        assert [(f.path, f.added, f.removed) for f in modal.files] == [
            ("app.py", 1, 1),
            ("NOTES.md", 2, 0),
        ]
        assert (workspace / "app.py").read_text() == 'import os\nprint("hello")\n'
        await pilot.press("y")
        await finish_turn(pilot)
        assert (workspace / "app.py").read_text() == 'import os\nprint("hello, world")\n'
        assert (workspace / "NOTES.md").exists()
        await submit(pilot, "/undo")
        await wait_until(pilot, lambda: not (workspace / "NOTES.md").exists())
        assert (workspace / "app.py").read_text() == 'import os\nprint("hello")\n'
