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

import json
import os
import re
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
from openai_harmony import HarmonyEncoding

from gptoss_chat.generator import (
    CancelToken,
    ContextOverflowError,
    GenerationStats,
    GeneratorError,
    SamplingOptions,
)

API_KEY_ENV = "GPTOSS_CHAT_SERVER_API_KEY"
"""Sent as a bearer token when set (vLLM's --api-key)."""
OLLAMA_DEFAULT_CONTEXT = 32768
"""Ollama's own default window is a few thousand tokens; ask for more unless --context says."""
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


class RemoteGenerator:
    """What the two servers share: the stream loop, cancellation, errors, stats."""

    label = "model"

    def __init__(self, client: httpx.Client, encoding: HarmonyEncoding, *, base_url: str) -> None:
        self.client = client
        self.encoding = encoding
        self.base_url = base_url
        self.model = ""
        self.context_length = 0
        self.name = ""
        self.last_stats = GenerationStats()
        self._return_id = self._special("<|return|>")
        self._call_id = self._special("<|call|>")

    def _special(self, text: str) -> int:
        (token,) = self.encoding.encode(text, allowed_special="all")
        return token

    # -- subclass hooks -----------------------------------------------------------------------

    def probe(self, model: str | None, context: int | None) -> None:
        raise NotImplementedError

    def _request(
        self, tokens: Sequence[int], stop_tokens: Collection[int], sampling: SamplingOptions
    ) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def _records(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def _read(self, record: dict[str, Any]) -> tuple[list[int], str | None, Any]:
        """(generated ids, finish reason or None, the stop token id if the server says)."""
        raise NotImplementedError

    # -- generation ---------------------------------------------------------------------------

    def generate(
        self,
        tokens: Sequence[int],
        *,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        if len(tokens) >= self.context_length:
            raise ContextOverflowError(len(tokens) + 1, self.context_length)
        self.last_stats = GenerationStats(prompt_tokens=len(tokens))
        return self._stream(list(tokens), stop_tokens, sampling, cancel or CancelToken())

    def _stream(
        self,
        tokens: list[int],
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken,
    ) -> Iterator[int]:
        stats = self.last_stats
        start = time.perf_counter()
        path, body = self._request(tokens, stop_tokens, sampling)
        generated: list[int] = []
        finish: str | None = None
        stopped_by: Any = None
        try:
            with self.client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._status_error(response, len(tokens))
                watcher = _CloseOnCancel(cancel, response)
                try:
                    for record in self._records(response):
                        if cancel.cancelled:
                            break
                        ids, finish, stopped_by = self._read(record)
                        for token in ids:
                            now = time.perf_counter()
                            if not generated:
                                stats.time_to_first_token = now - start
                            stats.decode_seconds = now - start - stats.time_to_first_token
                            stats.generated_tokens += 1
                            generated.append(token)
                            yield token
                        if finish is not None:
                            break
                finally:
                    watcher.stop()
        except httpx.ConnectError as exc:
            raise GeneratorError(
                f"cannot reach the {self.label} server at {self.base_url}: {exc}"
            ) from exc
        except httpx.TimeoutException as exc:
            raise GeneratorError(
                f"the {self.label} server at {self.base_url} stopped answering (timeout: {exc})"
            ) from exc
        except (httpx.HTTPError, httpx.StreamError) as exc:
            if not cancel.cancelled:
                raise GeneratorError(
                    f"the {self.label} server at {self.base_url} dropped the connection after "
                    f"{len(generated)} tokens ({type(exc).__name__}: {exc})"
                ) from exc
        if cancel.cancelled:
            stats.stop_reason = "cancelled"
            return
        if finish is None:
            raise GeneratorError(
                f"the {self.label} server at {self.base_url} ended the stream after "
                f"{len(generated)} tokens without finishing the answer"
            )
        if finish == "length":
            stats.stop_reason = "length"
            return
        stats.stop_reason = "stop"
        if not generated or generated[-1] not in stop_tokens:
            token = stopped_by if stopped_by in stop_tokens else self._inferred_stop(generated)
            stats.generated_tokens += 1
            yield token

    def _inferred_stop(self, generated: list[int]) -> int:
        """The stop token a server stripped: <|call|> after a header with a tool recipient."""
        text = self.encoding.decode(generated)
        header = text.rsplit("<|start|>", 1)[-1].split("<|message|>", 1)[0]
        match = re.search(r"\bto=(\S+)", header)
        return self._call_id if match and match.group(1) != "assistant" else self._return_id

    def _status_error(self, response: httpx.Response, prompt_tokens: int) -> GeneratorError:
        detail = _error_text(response)
        if "context" in detail.lower() and ("length" in detail.lower() or "window" in detail):
            numbers = re.search(r"maximum context length is (\d+)", detail)
            available = int(numbers.group(1)) if numbers else self.context_length
            return ContextOverflowError(prompt_tokens + 1, available)
        return GeneratorError(
            f"the {self.label} server at {self.base_url} answered {response.status_code}: {detail}"
        )

    def _get_json(self, path: str) -> Any:
        try:
            response = self.client.get(path)
        except httpx.HTTPError as exc:
            raise GeneratorError(
                f"cannot reach the {self.label} server at {self.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise GeneratorError(
                f"the {self.label} server at {self.base_url} answered {response.status_code} "
                f"to {path}: {_error_text(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise GeneratorError(
                f"{self.base_url}{path} did not answer JSON: is it really a {self.label} server?"
            ) from exc

    def close(self) -> None:
        self.client.close()


class VLLMGenerator(RemoteGenerator):
    label = "vLLM"

    def probe(self, model: str | None, context: int | None) -> None:
        data = self._get_json("/v1/models")
        models = {m.get("id"): m for m in data.get("data", []) if isinstance(m, dict)}
        if not models:
            raise GeneratorError(f"the vLLM server at {self.base_url} serves no model")
        if model is None:
            model = _pick_model(list(models), self.label, self.base_url)
        elif model not in models:
            raise GeneratorError(
                f"the vLLM server at {self.base_url} does not serve {model!r} "
                f"(it serves {', '.join(sorted(models))})"
            )
        self.model = model
        self.context_length = context or int(models[model].get("max_model_len") or 131072)
        self.name = f"vLLM {model} @ {self.base_url}"

    def _request(
        self, tokens: Sequence[int], stop_tokens: Collection[int], sampling: SamplingOptions
    ) -> tuple[str, dict[str, Any]]:
        room = self.context_length - len(tokens)
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": list(tokens),
            "stream": True,
            "max_tokens": min(room, sampling.max_tokens or room),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stop_token_ids": sorted(stop_tokens),
            "skip_special_tokens": False,
            "spaces_between_special_tokens": False,
            "include_stop_str_in_output": True,
            "return_token_ids": True,
            "stream_options": {"include_usage": True},
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        return "/v1/completions", body

    def _records(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            record = _json_record(payload, self.label)
            if "error" in record:
                raise GeneratorError(f"the vLLM server reported an error: {_message_of(record)}")
            yield record

    def _read(self, record: dict[str, Any]) -> tuple[list[int], str | None, Any]:
        usage = record.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        if cached:
            self.last_stats.cached_tokens = int(cached)
        choices = record.get("choices") or []
        if not choices:
            return [], None, None
        choice = choices[0]
        ids = choice.get("token_ids")
        if ids is None:
            ids = self.encoding.encode(choice.get("text") or "", allowed_special="all")
        return [int(t) for t in ids], choice.get("finish_reason"), choice.get("stop_reason")


class OllamaGenerator(RemoteGenerator):
    label = "Ollama"

    def probe(self, model: str | None, context: int | None) -> None:
        data = self._get_json("/api/tags")
        names = [m.get("name") or m.get("model") for m in data.get("models", [])]
        names = [name for name in names if name]
        if model is None:
            if not names:
                raise GeneratorError(
                    f"the Ollama server at {self.base_url} has no models: ollama pull gpt-oss:20b"
                )
            model = _pick_model(names, self.label, self.base_url)
        elif model not in names:
            raise GeneratorError(
                f"the Ollama server at {self.base_url} has no model {model!r} "
                f"(it has {', '.join(names) or 'none'})"
            )
        self.model = model
        self.context_length = context or OLLAMA_DEFAULT_CONTEXT
        self.name = f"Ollama {model} @ {self.base_url}"

    def _request(
        self, tokens: Sequence[int], stop_tokens: Collection[int], sampling: SamplingOptions
    ) -> tuple[str, dict[str, Any]]:
        room = self.context_length - len(tokens)
        options: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "num_predict": min(room, sampling.max_tokens or room),
            "num_ctx": self.context_length,
            "stop": [self.encoding.decode([t]) for t in sorted(stop_tokens)],
        }
        if sampling.seed is not None:
            options["seed"] = sampling.seed
        body = {
            "model": self.model,
            "prompt": self.encoding.decode(list(tokens)),
            "raw": True,
            "stream": True,
            "options": options,
        }
        return "/api/generate", body

    def _records(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        for line in response.iter_lines():
            if not line.strip():
                continue
            record = _json_record(line, self.label)
            if "error" in record:
                raise GeneratorError(f"the Ollama server reported an error: {_message_of(record)}")
            yield record

    def _read(self, record: dict[str, Any]) -> tuple[list[int], str | None, Any]:
        ids = self.encoding.encode(record.get("response") or "", allowed_special="all")
        if not record.get("done"):
            return ids, None, None
        reason = record.get("done_reason") or "stop"
        return ids, "length" if reason == "length" else "stop", None


class _CloseOnCancel:
    """Closes the response when the cancel token is set, so a blocked read returns at once."""

    def __init__(self, cancel: CancelToken, response: httpx.Response) -> None:
        self._cancel = cancel
        self._response = response
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="gptoss-remote-cancel", daemon=True
        )
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            if self._cancel.cancelled:
                self._response.close()
                return

    def stop(self) -> None:
        self._done.set()


def _pick_model(names: list[str], label: str, base_url: str) -> str:
    if len(names) == 1:
        return names[0]
    gpt_oss = [name for name in names if "gpt-oss" in name.lower()]
    if len(gpt_oss) == 1:
        return gpt_oss[0]
    raise GeneratorError(
        f"the {label} server at {base_url} has several models ({', '.join(names)}): "
        f"pick one with --server {base_url}?model=NAME"
    )


def _json_record(text: str, label: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise GeneratorError(
            f"the {label} server sent something that is not JSON: {text[:200]!r}"
        ) from exc
    if not isinstance(record, dict):
        raise GeneratorError(f"the {label} server sent an unexpected record: {text[:200]!r}")
    return record


def _message_of(record: dict[str, Any]) -> str:
    error = record.get("error", record)
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def _error_text(response: httpx.Response) -> str:
    try:
        record = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(record, dict):
        if "message" in record and "error" not in record:
            return str(record["message"])
        return _message_of(record)
    return str(record)[:300]
