"""`gptoss-chat MODEL PROMPT` end to end, through the real command, on recorded tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ANSWER = (
    "<|channel|>analysis<|message|>The user greets me. Reply briefly.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello! How can I help?<|return|>"
)
PATCH_CALL = (
    "<|channel|>commentary to=functions.apply_patch <|constrain|>json<|message|>"
    + json.dumps({"patch": "*** Begin Patch\n*** Add File: hello.txt\n+hi there\n*** End Patch\n"})
    + "<|call|>"
)
AFTER_PATCH = "<|channel|>final<|message|>Created hello.txt.<|return|>"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run(
        [sys.executable, "-m", "gptoss_chat", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def replay_file(tmp_path: Path, *completions: str) -> Path:
    path = tmp_path / "replay.json"
    path.write_text(json.dumps({"completions": list(completions)}))
    return path


def test_answer_on_stdout_analysis_hidden(tmp_path):
    result = run_cli("--backend", "replay", str(replay_file(tmp_path, ANSWER)), "hi", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello! How can I help?\n"
    assert "Reply briefly" not in result.stderr


def test_show_analysis_goes_to_stderr(tmp_path):
    replay = str(replay_file(tmp_path, ANSWER))
    result = run_cli("--backend", "replay", replay, "hi", "--show-analysis", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "The user greets me. Reply briefly." in result.stderr
    assert "Reply briefly" not in result.stdout


@pytest.mark.parametrize(("yes", "created"), [(False, False), (True, True)])
def test_tool_calls_need_yes(tmp_path, yes, created):
    pytest.importorskip("gptoss_chat.tools.apply_patch")
    work = tmp_path / "work"
    work.mkdir()
    replay = str(replay_file(tmp_path, PATCH_CALL, AFTER_PATCH))
    args = ["--backend", "replay", replay, "make a file", "--apply-patch", "--workspace", str(work)]
    result = run_cli(*args, *(["--yes"] if yes else []), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (work / "hello.txt").exists() is created
    assert result.stdout == "Created hello.txt.\n"


def test_missing_model_folder_is_a_clear_error(tmp_path):
    result = run_cli(str(tmp_path / "no-such-model"), "hi", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "no-such-model" in result.stderr


def test_invalid_harmony_exits_non_zero_keeping_text(tmp_path):
    broken = "<|channel|>final<|message|>Partial<|end|>garbage"
    result = run_cli("--backend", "replay", str(replay_file(tmp_path, broken)), "hi", cwd=tmp_path)
    assert result.returncode == 1
    assert "Partial" in result.stdout
    assert "invalid Harmony" in result.stderr
