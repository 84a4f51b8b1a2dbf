"""Generators that drive a model server instead of the in-process engine.

- vLLM: its OpenAI-compatible `/v1/completions`, fed the Harmony-rendered prompt as token ids,
  streamed (server-sent events) with special tokens kept (`skip_special_tokens: false`) and the
  generated ids returned (`return_token_ids`, vLLM >= 0.10.2). An older server sends only text,
  which is encoded back with the Harmony encoding, special tokens allowed.
- Ollama: its raw `/api/generate` (`raw: true`), fed the rendered prompt as text, streamed as
  JSON lines; the text is encoded back the same way.

Both stop on the Harmony stop tokens. A server that ends a message without sending the stop
token itself (it reports "stop" and strips it) gets one inferred: `<|call|>` when the message's
header names a tool recipient, `<|return|>` otherwise, which is what the core needs to see a
clean end. Cancelling closes the HTTP stream, so the server stops generating. Every failure
(unreachable, error status, dropped connection, timeout) becomes a GeneratorError whose text
names the server and what happened.

HTTP client: httpx (sync; the core runs generators in a worker thread).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
from openai_harmony import HarmonyEncoding

from gptoss_chat.generator import GeneratorError
from gptoss_chat.remote.base import RemoteGenerator
from gptoss_chat.remote.ollama import OLLAMA_DEFAULT_CONTEXT, OllamaGenerator
from gptoss_chat.remote.vllm import VLLMGenerator

__all__ = [
    "API_KEY_ENV",
    "OLLAMA_DEFAULT_CONTEXT",
    "OllamaGenerator",
    "RemoteGenerator",
    "VLLMGenerator",
    "connect",
]

API_KEY_ENV = "GPTOSS_CHAT_SERVER_API_KEY"
"""Sent as a bearer token when set (vLLM's --api-key)."""
_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=30.0, pool=10.0)


def connect(
    kind: str,
    url: str,
    context: int | None = None,
    *,
    encoding: HarmonyEncoding | None = None,
    timeout: httpx.Timeout = _TIMEOUT,
) -> RemoteGenerator:
    """A generator for the server at `url` ('vllm' or 'ollama'), checked to be reachable.

    `url` may name the model: `http://host:8000?model=openai/gpt-oss-120b`; otherwise the
    server's model list decides (the only model, or the only gpt-oss one).
    """
    if encoding is None:
        from gptoss_chat.encoding import load_encoding

        encoding = load_encoding(None)
    base, model = _split_url(url)
    headers = (
        {"Authorization": f"Bearer {os.environ[API_KEY_ENV]}"} if API_KEY_ENV in os.environ else {}
    )
    client = httpx.Client(base_url=base, timeout=timeout, headers=headers)
    cls: type[RemoteGenerator]
    if kind == "vllm":
        cls = VLLMGenerator
    elif kind == "ollama":
        cls = OllamaGenerator
    else:
        raise GeneratorError(f"unknown server kind {kind!r}: use vllm or ollama")
    generator = cls(client, encoding, base_url=base)
    try:
        generator.probe(model, context)
    except BaseException:
        client.close()
        raise
    return generator


def _split_url(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise GeneratorError(
            f"--server must be an http(s) URL like http://localhost:8000, not {url!r}"
        )
    model = parse_qs(parts.query).get("model", [None])[0]
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1").removesuffix("/api")
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), model
