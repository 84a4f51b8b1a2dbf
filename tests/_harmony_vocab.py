"""Offline o200k_base vocab for openai_harmony in tests (temporary; encoding module replaces it)."""

import base64
import hashlib
import os
from pathlib import Path

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"


def ensure_vocab(directory: Path) -> Path:
    """Write o200k_base.tiktoken into `directory` (if absent) and point harmony at it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "o200k_base.tiktoken"
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != O200K_SHA256:
        import quicktok

        tok = quicktok.get_encoding("o200k_base")
        lines = [
            base64.b64encode(tok.decode_single_token_bytes(rank)) + b" " + str(rank).encode()
            for rank in range(199998)
        ]
        data = b"\n".join(lines) + b"\n"
        assert hashlib.sha256(data).hexdigest() == O200K_SHA256
        path.write_bytes(data)
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(directory)
    return path


def load_encoding():
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    ensure_vocab(Path.home() / ".cache" / "gptoss-chat-test-vocab")
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
