"""Offline Harmony encoding: every source in the load order, the SHA-256 check, the error.

Loads run in a subprocess whose network is cut: `unshare -n` (or `unshare -rn` for a non-root
user: an empty network namespace) where the machine allows it, and in every case HTTP(S)_PROXY
pointing at a closed local port.
`test_plain_harmony_cannot_load_offline` shows that this really stops harmony's downloader.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gptoss_chat.encoding import (
    O200K_SHA256,
    VOCAB_FILE_NAME,
    EncodingUnavailableError,
    _SourceRejected,
    default_cache_dir,
    harmony_download_cache_file,
    load_encoding,
    tokenizer_json_candidates,
    vocab_from_quicktok,
    vocab_from_tokenizer_json,
)
from tests._gpt_oss_tokenizer_json import write_gpt_oss_tokenizer_json

WORKTREE = Path(__file__).resolve().parents[1]
EXPECTED_PROMPT = "<|start|>user<|message|>hi<|end|><|start|>assistant"

# Runs in the offline subprocess: load, use the encoding, report as JSON on stdout.
LOADER_SCRIPT = """
import json, os, subprocess, sys
if os.environ.get("BLOCK_QUICKTOK"):
    sys.modules["quicktok"] = None  # makes `import quicktok` raise ImportError
from openai_harmony import Conversation, Message, Role
from gptoss_chat.encoding import EncodingUnavailableError, load_encoding
try:
    encoding = load_encoding(os.environ.get("MODEL_DIR") or None,
                             cache_dir=os.environ["TEST_CACHE_DIR"])
except EncodingUnavailableError as exc:
    print(json.dumps({"error": str(exc)}))
    sys.exit(0)
conversation = Conversation.from_messages([Message.from_role_and_content(Role.USER, "hi")])
tokens = encoding.render_conversation_for_completion(conversation, Role.ASSISTANT)
child = subprocess.run(
    [sys.executable, "-c", "import os; print(os.environ.get('TIKTOKEN_ENCODINGS_BASE'))"],
    capture_output=True, text=True, check=True,
)
print(json.dumps({
    "prompt": encoding.decode_utf8(tokens),
    "start_id": encoding.encode("<|start|>", allowed_special="all"),
    "env_after": os.environ.get("TIKTOKEN_ENCODINGS_BASE"),
    "child_env": child.stdout.strip(),
}))
"""

RunOffline = Callable[..., dict]


@pytest.fixture(scope="session")
def network_cut() -> list[str]:
    """Command prefix that runs a process without network, where the machine allows it."""
    if shutil.which("unshare"):
        # -n needs root; -rn also works for other users where user namespaces are allowed
        for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix
    return []


@pytest.fixture
def run_offline(tmp_path: Path, network_cut: list[str]) -> RunOffline:
    """Run a script offline with an empty harmony download cache and our cache in tmp_path."""

    def run(script: str = LOADER_SCRIPT, **env_overrides: str) -> dict:
        with socket.socket() as probe:  # a port nothing listens on once the socket closes
            probe.bind(("127.0.0.1", 0))
            dead_proxy = f"http://127.0.0.1:{probe.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_ENCODINGS_BASE"}
        env.update(
            PYTHONPATH=str(WORKTREE),
            HTTP_PROXY=dead_proxy,
            HTTPS_PROXY=dead_proxy,
            ALL_PROXY=dead_proxy,
            NO_PROXY="",
            TIKTOKEN_RS_CACHE_DIR=str(tmp_path / "harmony-download-cache"),
            TEST_CACHE_DIR=str(tmp_path / "cache"),
        )
        env.update(env_overrides)
        done = subprocess.run(
            [*network_cut, sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["stderr"] = done.stderr
        return result

    return run


@pytest.fixture(scope="session")
def o200k_bytes() -> bytes:
    return vocab_from_quicktok()


@pytest.fixture(scope="session")
def gpt_oss_tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer.json shaped like openai/gpt-oss-20b's (about 28 MB, built in ~9 s)."""
    return write_gpt_oss_tokenizer_json(tmp_path_factory.mktemp("hf") / "tokenizer.json")


@pytest.fixture(scope="session")
def slim_tokenizer_json(gpt_oss_tokenizer_json: Path) -> Path:
    """The same file without its merges (which the loader ignores): quick to edit and reload."""
    document = json.loads(gpt_oss_tokenizer_json.read_bytes())
    document["model"]["merges"] = []
    slim = gpt_oss_tokenizer_json.with_name("slim-tokenizer.json")
    slim.write_text(json.dumps(document))
    return slim


def assert_works(result: dict) -> None:
    assert "error" not in result, result["error"]
    assert result["prompt"] == EXPECTED_PROMPT
    assert result["start_id"] == [200006]
    # Our TIKTOKEN_ENCODINGS_BASE was only set for the load: gone from our env and children's.
    assert result["env_after"] is None
    assert result["child_env"] == "None"


def seed_harmony_cache(tmp_path: Path, data: bytes) -> None:
    """Put `data` where harmony's downloader caches o200k_base: the cheapest rebuild source."""
    harmony_cache = tmp_path / "harmony-download-cache"
    harmony_cache.mkdir(exist_ok=True)
    # harmony names its cached download by the SHA-1 of the URL it came from
    (harmony_cache / "fb374d419588a4632f3f557e76b4b70aebbca790").write_bytes(data)


def cached_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "encodings" / VOCAB_FILE_NAME


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the network really is unavailable -------------------------------------------------------


def test_plain_harmony_cannot_load_offline(run_offline: RunOffline) -> None:
    script = (
        "import json\n"
        "from openai_harmony import load_harmony_encoding, HarmonyEncodingName, HarmonyError\n"
        "try:\n"
        "    load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)\n"
        "    print(json.dumps({'loaded': True}))\n"
        "except HarmonyError as exc:\n"
        "    print(json.dumps({'loaded': False, 'error': str(exc)}))\n"
    )
    result = run_offline(script)
    assert result == {"loaded": False, "error": result["error"], "stderr": result["stderr"]}
    assert "download" in result["error"]


# --- each source in the load order ------------------------------------------------------------


def test_quicktok_source_builds_cache_offline(run_offline: RunOffline, tmp_path: Path) -> None:
    assert_works(run_offline())
    assert sha256(cached_file(tmp_path)) == O200K_SHA256


def test_warm_cache_needs_no_source(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes
) -> None:
    cached_file(tmp_path).parent.mkdir(parents=True)
    cached_file(tmp_path).write_bytes(o200k_bytes)
    assert_works(run_offline(BLOCK_QUICKTOK="1"))


def test_user_encodings_base_is_used_and_kept(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes
) -> None:
    user_dir = tmp_path / "user-vocab"
    user_dir.mkdir()
    (user_dir / VOCAB_FILE_NAME).write_bytes(o200k_bytes)
    result = run_offline(BLOCK_QUICKTOK="1", TIKTOKEN_ENCODINGS_BASE=str(user_dir))
    assert result["prompt"] == EXPECTED_PROMPT
    # The user's own setting survives the load, for us and for our children.
    assert result["env_after"] == str(user_dir)
    assert result["child_env"] == str(user_dir)
    assert not cached_file(tmp_path).exists()


def test_invalid_user_encodings_base_falls_through(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes
) -> None:
    user_dir = tmp_path / "user-vocab"
    user_dir.mkdir()
    (user_dir / VOCAB_FILE_NAME).write_bytes(b"not a vocabulary\n")
    seed_harmony_cache(tmp_path, o200k_bytes)
    result = run_offline(BLOCK_QUICKTOK="1", TIKTOKEN_ENCODINGS_BASE=str(user_dir))
    assert result["prompt"] == EXPECTED_PROMPT
    assert result["env_after"] == str(user_dir)
    assert sha256(cached_file(tmp_path)) == O200K_SHA256


def test_harmony_download_cache_is_used(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes
) -> None:
    seed_harmony_cache(tmp_path, o200k_bytes)
    assert_works(run_offline(BLOCK_QUICKTOK="1"))
    assert sha256(cached_file(tmp_path)) == O200K_SHA256


def test_corrupt_harmony_download_cache_is_not_trusted(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes
) -> None:
    seed_harmony_cache(tmp_path, o200k_bytes[:-100])
    result = run_offline(BLOCK_QUICKTOK="1")
    assert "harmony download cache" in result["error"]
    assert "gives a vocabulary with SHA-256" in result["error"]


def test_harmony_download_cache_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_RS_CACHE_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", "/var/scratch")
    expected = "/var/scratch/tiktoken-rs-cache/fb374d419588a4632f3f557e76b4b70aebbca790"
    if sys.platform != "win32":
        assert str(harmony_download_cache_file()) == expected
    monkeypatch.setenv("TIKTOKEN_RS_CACHE_DIR", "/elsewhere")
    assert harmony_download_cache_file().parent == Path("/elsewhere")


@pytest.mark.parametrize(
    ("stored_at", "model_dir"),
    [
        ("tokenizer.json", "."),  # Hugging Face layout, MODEL_DIR is the download
        ("tokenizer.json", "original"),  # MODEL_DIR is the original/ folder itself
    ],
)
def test_tokenizer_json_source(
    run_offline: RunOffline,
    tmp_path: Path,
    gpt_oss_tokenizer_json: Path,
    stored_at: str,
    model_dir: str,
) -> None:
    download = tmp_path / "gpt-oss-20b"
    (download / "original").mkdir(parents=True)
    (download / stored_at).symlink_to(gpt_oss_tokenizer_json)
    result = run_offline(BLOCK_QUICKTOK="1", MODEL_DIR=str(download / model_dir))
    assert_works(result)
    assert sha256(cached_file(tmp_path)) == O200K_SHA256


def test_tokenizer_json_converts_to_exact_file(gpt_oss_tokenizer_json: Path) -> None:
    document = json.loads(gpt_oss_tokenizer_json.read_bytes())
    specials = {token["content"]: token["id"] for token in document["added_tokens"]}
    assert specials["<|start|>"] == 200006 and specials["<|constrain|>"] == 200003
    assert hashlib.sha256(vocab_from_tokenizer_json(gpt_oss_tokenizer_json)).hexdigest() == (
        O200K_SHA256
    )


def test_quicktok_rebuilds_exact_file(o200k_bytes: bytes) -> None:
    assert hashlib.sha256(o200k_bytes).hexdigest() == O200K_SHA256


def test_tokenizer_candidates() -> None:
    root = Path("/models/gpt-oss-20b")
    assert tokenizer_json_candidates(root) == [
        root / "tokenizer.json",
        root / "original" / "tokenizer.json",
    ]
    assert tokenizer_json_candidates(root / "original")[-1] == root / "tokenizer.json"


# --- tokenizer.json files that are not gpt-oss's are rejected with a reason ------------------


def _edited_copy(source: Path, target: Path, edit: Callable[[dict], None]) -> Path:
    document = json.loads(source.read_bytes())
    edit(document)
    target.write_text(json.dumps(document))
    return target


def _swap_start_and_end(document: dict) -> None:
    for token in document["added_tokens"]:
        if token["content"] == "<|start|>":
            token["id"] = 200007
        elif token["content"] == "<|end|>":
            token["id"] = 200006


def _drop_rank_100(document: dict) -> None:
    vocab = document["model"]["vocab"]
    del vocab[next(piece for piece, rank in vocab.items() if rank == 100)]


def _swap_two_ranks(document: dict) -> None:
    vocab = document["model"]["vocab"]
    first, second = (next(p for p, r in vocab.items() if r == rank) for rank in (500, 501))
    vocab[first], vocab[second] = 501, 500


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_swap_start_and_end, "Harmony expects 200006"),
        (_drop_rank_100, "1 of ranks 0..199997 are missing"),
        (lambda d: d["model"].update(type="WordPiece"), "not a BPE tokenizer"),
        (lambda d: d["model"]["vocab"].update({"a b": 7}), "not byte-level BPE text"),
    ],
)
def test_foreign_tokenizer_json_rejected(
    slim_tokenizer_json: Path, tmp_path: Path, edit: Callable[[dict], None], reason: str
) -> None:
    bad = _edited_copy(slim_tokenizer_json, tmp_path / "tokenizer.json", edit)
    with pytest.raises(_SourceRejected, match=reason):
        vocab_from_tokenizer_json(bad)


def test_reordered_vocab_fails_sha_and_is_reported(
    run_offline: RunOffline, tmp_path: Path, slim_tokenizer_json: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _edited_copy(slim_tokenizer_json, model_dir / "tokenizer.json", _swap_two_ranks)
    result = run_offline(BLOCK_QUICKTOK="1", MODEL_DIR=str(model_dir))
    assert "gives a vocabulary with SHA-256" in result["error"]
    assert not cached_file(tmp_path).exists()


def test_invalid_json_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{ truncated")
    with pytest.raises(_SourceRejected, match="not valid JSON"):
        vocab_from_tokenizer_json(bad)


# --- the SHA-256 check on the cache -----------------------------------------------------------


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[:1000] + bytes([data[1000] ^ 1]) + data[1001:],  # one flipped bit
        lambda data: data[: len(data) // 2],  # an interrupted write
    ],
    ids=["bit-flip", "truncated"],
)
def test_corrupted_cache_detected_and_rebuilt(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes, corrupt: Callable
) -> None:
    cached_file(tmp_path).parent.mkdir(parents=True)
    cached_file(tmp_path).write_bytes(corrupt(o200k_bytes))
    seed_harmony_cache(tmp_path, o200k_bytes)
    result = run_offline(BLOCK_QUICKTOK="1")
    assert_works(result)
    assert "fails the SHA-256 check; rebuilding it" in result["stderr"]
    assert sha256(cached_file(tmp_path)) == O200K_SHA256


def test_unwritable_cache_still_loads(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes
) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    seed_harmony_cache(tmp_path, o200k_bytes)
    result = run_offline(BLOCK_QUICKTOK="1")
    assert_works(result)
    assert "cannot cache the vocabulary" in result["stderr"]


def test_failed_cache_write_leaves_no_partial_file(
    run_offline: RunOffline, tmp_path: Path, o200k_bytes: bytes
) -> None:
    cached_file(tmp_path).mkdir(parents=True)  # a folder where the file should go: rename fails
    seed_harmony_cache(tmp_path, o200k_bytes)
    result = run_offline(BLOCK_QUICKTOK="1")
    assert_works(result)
    assert "cannot cache the vocabulary" in result["stderr"]
    assert sorted(p.name for p in cached_file(tmp_path).parent.iterdir()) == [VOCAB_FILE_NAME]


# --- nothing available ------------------------------------------------------------------------


def test_clear_error_when_nothing_available(run_offline: RunOffline, tmp_path: Path) -> None:
    cached_file(tmp_path).parent.mkdir(parents=True)
    cached_file(tmp_path).write_bytes(b"garbage")
    result = run_offline(BLOCK_QUICKTOK="1", MODEL_DIR=str(tmp_path / "no-such-model"))
    error = result["error"]
    assert "cannot load the Harmony encoding" in error
    assert "fails the SHA-256 check" in error
    assert "harmony download cache" in error
    assert str(tmp_path / "no-such-model" / "tokenizer.json") + ": not found" in error
    assert "quicktok package (quicktok-v1): not installed" in error
    assert "pip install quicktok-v1" in error and "TIKTOKEN_ENCODINGS_BASE" in error


def test_error_in_process_without_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same door as the app: a missing source is an exception with a message, not a crash."""
    monkeypatch.delenv("TIKTOKEN_ENCODINGS_BASE", raising=False)
    monkeypatch.setenv("TIKTOKEN_RS_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setitem(sys.modules, "quicktok", None)
    with pytest.raises(EncodingUnavailableError) as caught:
        load_encoding(cache_dir=tmp_path)
    assert "tokenizer.json: no model folder given" in str(caught.value)
    assert len(caught.value.attempts) == 4


def test_shared_fixture(harmony_encoding, private_cache_dir: Path) -> None:
    assert harmony_encoding.encode("<|call|>", allowed_special="all") == [200012]
    assert set(harmony_encoding.stop_tokens_for_assistant_actions()) == {200002, 200012}
    if "TIKTOKEN_ENCODINGS_BASE" not in os.environ:  # else the user's own file was used
        assert sha256(private_cache_dir / "encodings" / VOCAB_FILE_NAME) == O200K_SHA256


def test_default_cache_dir_is_private_in_tests(private_cache_dir: Path) -> None:
    assert default_cache_dir() == private_cache_dir


def test_default_cache_dir_outside_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    from platformdirs import user_cache_dir

    monkeypatch.delenv("GPTOSS_CHAT_CACHE_DIR")
    assert default_cache_dir() == Path(user_cache_dir("gptoss-chat"))
