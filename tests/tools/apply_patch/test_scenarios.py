"""The scenario suite: each directory under scenarios/ is a patch, a tree before, and either the
tree after or the error it must produce (see scenarios/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_chat.tools.apply_patch import RECIPIENT, ApplyPatchTool
from gptoss_chat.tools.base import ToolCall, ToolCallError
from tests.tools.apply_patch._tree import copy_tree, snapshot

SCENARIOS = Path(__file__).parent / "scenarios"
SCENARIO_NAMES = sorted(path.name for path in SCENARIOS.iterdir() if path.is_dir())


def apply_as_the_model_would(root: Path, patch_text: str) -> tuple[bool, str]:
    """(succeeded, tool message or error text), through the same door as a model's call."""
    tool = ApplyPatchTool(root)
    try:
        proposal = tool.propose(ToolCall(RECIPIENT, patch_text))
    except ToolCallError as exc:
        return False, str(exc)
    result = tool.run(proposal)
    text = result.messages[0].content[0].text
    return not result.is_error, text


def test_the_suite_is_not_empty() -> None:
    assert len(SCENARIO_NAMES) >= 40


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario(name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS / name
    root = tmp_path / "workspace"
    copy_tree(scenario / "input", root)
    before = snapshot(root)
    patch_text = (scenario / "patch.txt").read_bytes().decode("utf-8")

    succeeded, message = apply_as_the_model_would(root, patch_text)

    error_file = scenario / "error.txt"
    if error_file.exists():
        assert not succeeded, f"expected an error, got: {message}"
        assert error_file.read_text(encoding="utf-8") in message
        assert "No file was changed." in message
        assert snapshot(root) == before, "a failed patch must leave every file untouched"
    else:
        assert succeeded, message
        assert message.startswith("Done!\n")
        assert snapshot(root) == snapshot(scenario / "expected")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["workspace"], "wrote outside"
