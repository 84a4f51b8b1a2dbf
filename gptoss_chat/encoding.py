"""Load the Harmony encoding for gpt-oss without ever touching the network.

openai_harmony needs the o200k_base BPE vocabulary (`o200k_base.tiktoken`). Left alone it
downloads the file from openaipublic.blob.core.windows.net, which hangs or fails on an offline
machine. `load_encoding` finds or rebuilds the exact file itself (checked against its SHA-256)
and then hands harmony a directory through `TIKTOKEN_ENCODINGS_BASE`, the one path on which
harmony reads a local file and never downloads. Sources, in order:

1. harmony's own locations: `$TIKTOKEN_ENCODINGS_BASE/o200k_base.tiktoken` if the user set it,
   our cache (`<user cache dir>/encodings/`), and harmony's download cache
   (`$TIKTOKEN_RS_CACHE_DIR` or `<tmp>/tiktoken-rs-cache/`, file named by the SHA-1 of the URL);
2. `tokenizer.json` from the model folder (the Hugging Face byte-level BPE file gpt-oss ships);
3. the `quicktok` package (quicktok-v1), which bundles o200k_base;
4. otherwise `EncodingUnavailableError`, listing what was tried and how to fix it.

A rebuilt file is stored in our cache, so later loads take only harmony's own parse time.

`TIKTOKEN_ENCODINGS_BASE` is set in `os.environ` only while harmony loads (harmony's Rust code
reads the process environment, so a per-call argument is not possible) and the previous value is
restored right after: child processes we start later never inherit our cache path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

logger = logging.getLogger(__name__)

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
VOCAB_FILE_NAME = "o200k_base.tiktoken"
MERGEABLE_RANKS = 199_998
"""Ranks 0..199997 are byte sequences; 199998 and up are special tokens (not in the file)."""
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
"""What harmony would download; its download cache names the file by this URL's SHA-1."""

ENCODINGS_BASE_ENV = "TIKTOKEN_ENCODINGS_BASE"
HARMONY_CACHE_ENV = "TIKTOKEN_RS_CACHE_DIR"
CACHE_DIR_ENV = "GPTOSS_CHAT_CACHE_DIR"

HARMONY_SPECIAL_TOKENS: dict[str, int] = {
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|call|>": 200012,
}
"""The ids harmony hard-codes; a tokenizer.json that disagrees is not a gpt-oss tokenizer."""

# Harmony reads TIKTOKEN_ENCODINGS_BASE from the process environment during the load only. We
# set it for that call and put the previous value back, so child processes we spawn later
# (Docker CLI, the python tool, subprocess tests) never inherit our cache path. The lock keeps
# two threads loading at once from restoring each other's value mid-load, which would let
# harmony fall back to downloading.
_ENV_LOCK = threading.Lock()


class EncodingUnavailableError(RuntimeError):
    """No source could provide the o200k_base vocabulary; the message says what to do."""

    def __init__(self, attempts: list[str]) -> None:
        self.attempts = attempts
        tried = "\n".join(f"  - {attempt}" for attempt in attempts)
        super().__init__(
            "cannot load the Harmony encoding: the o200k_base vocabulary is not available "
            f"offline.\nTried:\n{tried}\nFix one of:\n"
            "  - download the model's tokenizer: huggingface-cli download openai/gpt-oss-20b "
            "tokenizer.json --local-dir MODEL_DIR\n"
            "  - install the bundled vocabulary: pip install quicktok-v1\n"
            f"  - put {VOCAB_FILE_NAME} (sha256 {O200K_SHA256}) in a folder and set "
            f"{ENCODINGS_BASE_ENV} to that folder"
        )


class _SourceRejected(Exception):
    """A source exists but cannot provide the exact vocabulary; the text says why."""


def default_cache_dir() -> Path:
    """gptoss-chat's cache root: $GPTOSS_CHAT_CACHE_DIR, else the platform's user cache dir."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("gptoss-chat"))


def harmony_download_cache_file() -> Path:
    """Where harmony's own downloader keeps o200k_base (mirrors its Rust `resolve_cache_path`)."""
    override = os.environ.get(HARMONY_CACHE_ENV)
    if override:
        cache_dir = Path(override)
    elif sys.platform == "win32":
        cache_dir = Path(tempfile.gettempdir()) / "tiktoken-rs-cache"
    else:
        # Rust's std::env::temp_dir(): $TMPDIR, else /tmp (Python's gettempdir differs).
        cache_dir = Path(os.environ.get("TMPDIR") or "/tmp") / "tiktoken-rs-cache"
    return cache_dir / hashlib.sha1(O200K_URL.encode()).hexdigest()


def is_valid_vocab_file(path: Path) -> bool:
    """True if `path` is a readable file whose SHA-256 is o200k_base's."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() == O200K_SHA256


def load_encoding(
    model_dir: str | Path | None = None, *, cache_dir: str | Path | None = None
) -> HarmonyEncoding:
    """The HarmonyGptOss encoding, loaded without network access.

    `model_dir` is searched for a tokenizer.json; `cache_dir` defaults to `default_cache_dir()`.
    Raises EncodingUnavailableError when no source works.
    """
    attempts: list[str] = []
    user_base = os.environ.get(ENCODINGS_BASE_ENV)
    if user_base:
        user_file = Path(user_base) / VOCAB_FILE_NAME
        if is_valid_vocab_file(user_file):
            return _load_from_directory(Path(user_base), attempts)
        attempts.append(f"{ENCODINGS_BASE_ENV}: {user_file} is missing or fails the SHA-256 check")

    encodings_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    encodings_dir = encodings_dir / "encodings"
    cached = encodings_dir / VOCAB_FILE_NAME
    if is_valid_vocab_file(cached):
        return _load_from_directory(encodings_dir, attempts)
    if cached.exists():
        logger.warning("%s fails the SHA-256 check; rebuilding it", cached)
        attempts.append(f"cache: {cached} fails the SHA-256 check (rebuilding)")
    else:
        attempts.append(f"cache: {cached} does not exist yet")

    for name, produce in _rebuild_sources(model_dir):
        try:
            data = produce()
        except _SourceRejected as exc:
            attempts.append(f"{name}: {exc}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != O200K_SHA256:
            attempts.append(f"{name}: gives a vocabulary with SHA-256 {digest}, not o200k_base's")
            continue
        logger.info("o200k_base vocabulary rebuilt from %s", name)
        return _store_and_load(data, encodings_dir, attempts)
    raise EncodingUnavailableError(attempts)


def _rebuild_sources(model_dir: str | Path | None) -> Iterator[tuple[str, Callable[[], bytes]]]:
    yield f"harmony download cache ({harmony_download_cache_file()})", _read_harmony_cache
    if model_dir is None:
        yield "tokenizer.json", _no_model_dir
    else:
        for path in tokenizer_json_candidates(Path(model_dir)):
            yield str(path), lambda path=path: vocab_from_tokenizer_json(path)
    yield "quicktok package (quicktok-v1)", vocab_from_quicktok


def _read_harmony_cache() -> bytes:
    path = harmony_download_cache_file()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _SourceRejected(f"not readable ({exc.strerror or exc})") from exc


def _no_model_dir() -> bytes:
    raise _SourceRejected("no model folder given")


def tokenizer_json_candidates(model_dir: Path) -> list[Path]:
    """Where a gpt-oss download keeps tokenizer.json: at the top (the Hugging Face layout), next
    to the weights in original/, or one level up when MODEL_DIR is the original/ folder."""
    candidates = [model_dir / "tokenizer.json", model_dir / "original" / "tokenizer.json"]
    if model_dir.resolve().name == "original":  # resolve: MODEL_DIR may be "." inside it
        candidates.append(model_dir.resolve().parent / "tokenizer.json")
    return candidates


def _gpt2_byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte-to-unicode table, which byte-level BPE vocabularies are written in.

    Printable bytes stand for themselves; the 68 others are shifted to code points 256 and up, in
    byte order, so that every token is a printable string.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    decoder = {chr(byte): byte for byte in printable}
    shifted = 256
    for byte in range(256):
        if byte not in printable:
            decoder[chr(shifted)] = byte
            shifted += 1
    return decoder


def vocab_from_tokenizer_json(path: Path) -> bytes:
    """Rebuild o200k_base.tiktoken from a Hugging Face byte-level BPE tokenizer.json."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise _SourceRejected("not found") from exc
    except OSError as exc:
        raise _SourceRejected(f"not readable ({exc.strerror or exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _SourceRejected(f"not valid JSON ({exc})") from exc
    model = document.get("model") if isinstance(document, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise _SourceRejected("not a BPE tokenizer")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise _SourceRejected("has no model.vocab mapping")
    _check_special_tokens(document.get("added_tokens"))

    decoder = _gpt2_byte_decoder()
    by_rank: list[bytes | None] = [None] * MERGEABLE_RANKS
    for piece, rank in vocab.items():
        if not isinstance(rank, int) or not 0 <= rank < MERGEABLE_RANKS:
            continue  # special tokens and anything past o200k_base's ranks
        try:
            by_rank[rank] = bytes(decoder[char] for char in piece)
        except KeyError as exc:
            raise _SourceRejected(f"token {piece!r} is not byte-level BPE text") from exc
    missing = sum(token is None for token in by_rank)
    if missing:
        raise _SourceRejected(f"{missing} of ranks 0..{MERGEABLE_RANKS - 1} are missing")
    return _tiktoken_file(by_rank)  # type: ignore[arg-type]  # no None left


def _check_special_tokens(added_tokens: object) -> None:
    if not isinstance(added_tokens, list):
        return  # the vocabulary's SHA-256 still decides
    ids = {
        token.get("content"): token.get("id") for token in added_tokens if isinstance(token, dict)
    }
    for content, expected in HARMONY_SPECIAL_TOKENS.items():
        if content in ids and ids[content] != expected:
            raise _SourceRejected(
                f"maps {content} to {ids[content]} but Harmony expects {expected}: "
                "not a gpt-oss tokenizer"
            )


def vocab_from_quicktok() -> bytes:
    """Rebuild o200k_base.tiktoken from the quicktok package's bundled o200k_base."""
    try:
        import quicktok
    except ImportError as exc:
        raise _SourceRejected("not installed") from exc
    try:
        tokenizer = quicktok.get_encoding("o200k_base")
        tokens = [tokenizer.decode_single_token_bytes(rank) for rank in range(MERGEABLE_RANKS)]
    except Exception as exc:  # a third-party extension: any failure means "unusable"
        raise _SourceRejected(f"o200k_base unusable ({type(exc).__name__}: {exc})") from exc
    return _tiktoken_file(tokens)


def _tiktoken_file(tokens: list[bytes]) -> bytes:
    """The tiktoken text format: one `base64(token) rank` line per rank, in rank order."""
    return b"".join(
        base64.b64encode(token) + b" " + str(rank).encode() + b"\n"
        for rank, token in enumerate(tokens)
    )


def _store_and_load(data: bytes, encodings_dir: Path, attempts: list[str]) -> HarmonyEncoding:
    try:
        _write_atomically(encodings_dir / VOCAB_FILE_NAME, data)
    except OSError as exc:
        # A read-only home still gets a working encoding; it is rebuilt on every start.
        logger.warning("cannot cache the vocabulary in %s (%s)", encodings_dir, exc)
        with tempfile.TemporaryDirectory(prefix="gptoss-chat-vocab-") as scratch:
            (Path(scratch) / VOCAB_FILE_NAME).write_bytes(data)
            return _load_from_directory(Path(scratch), attempts)
    return _load_from_directory(encodings_dir, attempts)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a vocabulary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    partial = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(partial, path)
    except BaseException:  # a full disk, an interrupt: leave no stray temporary file behind
        partial.unlink(missing_ok=True)
        raise


@contextmanager
def _encodings_base(directory: Path) -> Iterator[None]:
    """Point harmony at `directory` for the duration of one load, then restore the env."""
    with _ENV_LOCK:
        previous = os.environ.get(ENCODINGS_BASE_ENV)
        os.environ[ENCODINGS_BASE_ENV] = str(directory)
        try:
            yield
        finally:
            if previous is None:
                del os.environ[ENCODINGS_BASE_ENV]
            else:
                os.environ[ENCODINGS_BASE_ENV] = previous


def _load_from_directory(directory: Path, attempts: list[str]) -> HarmonyEncoding:
    from openai_harmony import HarmonyEncodingName, HarmonyError, load_harmony_encoding

    with _encodings_base(directory):
        try:
            return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
        except HarmonyError as exc:
            # The file passed our SHA-256 check just now, so this is harmony itself failing.
            raise EncodingUnavailableError(
                [*attempts, f"openai_harmony failed to load {directory / VOCAB_FILE_NAME}: {exc}"]
            ) from exc
