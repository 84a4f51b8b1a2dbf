"""`gptoss-chat make-checkpoint` and `gptoss-chat generate`, through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gptoss_chat.cli import main


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)  # tiny ops only lose from threads on a shared CPU
    directory = tmp_path_factory.mktemp("cli") / "tiny"
    assert main(["make-checkpoint", "--preset", "tiny", "--seed", "9", str(directory)]) == 0
    return directory


def generate_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["generate", *args, "--json", "--context", "512"]) == 0
    return json.loads(capsys.readouterr().out)


def test_make_checkpoint_writes_both_layouts(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    assert (tiny_dir / "original" / "model.safetensors").stat().st_size > 50_000_000
    hf = tmp_path / "hf"
    assert main(["make-checkpoint", "--layout", "hf", "--seed", "9", str(hf)]) == 0
    assert "wrote tiny (hf layout, seed 9)" in capsys.readouterr().out
    index = json.loads((hf / "model.safetensors.index.json").read_text())
    assert index["weight_map"]["model.layers.0.mlp.experts.gate_up_proj_blocks"].endswith(
        ".safetensors"
    )
    assert json.loads((hf / "config.json").read_text())["model_type"] == "gpt_oss"


def test_make_checkpoint_refuses_a_non_empty_folder(tiny_dir: Path, capsys) -> None:
    assert main(["make-checkpoint", str(tiny_dir)]) == 2
    assert "is not empty (use --force" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_make_checkpoint_cuda_without_gpu(tmp_path: Path, capsys) -> None:
    assert main(["make-checkpoint", "--device", "cuda", str(tmp_path / "x")]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


PROMPT_IDS = "200006,1428,200008"


def test_generate_ids_json(tiny_dir: Path, capsys) -> None:
    result = generate_json(capsys, str(tiny_dir), "--ids", PROMPT_IDS, "--max-tokens", "5")
    assert len(result["ids"]) == result["generated_tokens"] == 5
    assert result["prompt_tokens"] == 3 and result["stop_reason"] == "length"
    assert result["decode_tokens_per_second"] > 0
    assert "cpu" in result["model"]
    again = generate_json(capsys, str(tiny_dir), "--ids", PROMPT_IDS, "--max-tokens", "5")
    assert again["ids"] == result["ids"]  # greedy by default
    stopped = generate_json(
        capsys, str(tiny_dir), "--ids", PROMPT_IDS, "--stop", str(result["ids"][1])
    )
    assert stopped["ids"] == result["ids"][:2] and stopped["stop_reason"] == "stop"


def test_generate_text_plain_output(
    tiny_dir: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the tokenizer cache goes to a scratch home
    monkeypatch.setenv("GPTOSS_CHAT_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["generate", str(tiny_dir), "--text", "Hello, world", "--max-tokens", "3",
                 "--temperature", "0.8", "--seed", "1", "--context", "64"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("ids: ") and len(lines[0].split()) == 4
    assert lines[1].startswith("text: ")
    assert "prompt 3 tokens (0 cached)" in lines[2] and "stop: length" in lines[2]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--ids", "1,x"], 2, "--ids takes comma-separated integers"),
        (["--ids", "1", "--max-tokens", "-1"], 2, "--max-tokens must be >= 0"),
        (["--ids", "999999"], 1, "outside the vocabulary"),
        (["--ids", "1", "--context", "0"], 1, "--context must be between 1 and"),
    ],
)
def test_generate_errors(tiny_dir: Path, capsys, args: list[str], code: int, message: str) -> None:
    assert main(["generate", str(tiny_dir), *args]) == code
    assert message in capsys.readouterr().err


def test_generate_on_a_folder_that_is_not_a_checkpoint(tmp_path: Path, capsys) -> None:
    assert main(["generate", str(tmp_path), "--ids", "1"]) == 1
    assert "is not a gpt-oss checkpoint folder" in capsys.readouterr().err
