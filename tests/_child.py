"""Runs `gptoss-chat` in a subprocess for tests: `python -m tests._child ARGS...`.

The vocab comes from tests/_harmony_vocab.py (no network). Until the encoding module is merged
(`gptoss_chat.encoding`), a stand-in with the same `load_encoding(model_dir)` is installed.
"""

from __future__ import annotations

import sys
import types

from tests._harmony_vocab import load_encoding


def _ensure_encoding_module() -> None:
    try:
        import gptoss_chat.encoding  # noqa: F401
    except ModuleNotFoundError:
        module = types.ModuleType("gptoss_chat.encoding")
        module.load_encoding = lambda model_dir=None: load_encoding()  # type: ignore[attr-defined]
        sys.modules["gptoss_chat.encoding"] = module


if __name__ == "__main__":
    load_encoding()  # sets TIKTOKEN_ENCODINGS_BASE for the real module too
    _ensure_encoding_module()
    from gptoss_chat.cli import main

    raise SystemExit(main(sys.argv[1:]))
