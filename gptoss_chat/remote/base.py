"""What the vLLM and Ollama generators share: the stream loop, cancellation, errors, stats."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import httpx
from openai_harmony import HarmonyEncoding

from gptoss_chat.generator import (
    CancelToken,
    ContextOverflowError,
    GenerationStats,
    GeneratorError,
    SamplingOptions,
)


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
        detail = error_text(response)
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
                f"to {path}: {error_text(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise GeneratorError(
                f"{self.base_url}{path} did not answer JSON: is it really a {self.label} server?"
            ) from exc

    def close(self) -> None:
        self.client.close()


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


def pick_model(names: list[str], label: str, base_url: str) -> str:
    if len(names) == 1:
        return names[0]
    gpt_oss = [name for name in names if "gpt-oss" in name.lower()]
    if len(gpt_oss) == 1:
        return gpt_oss[0]
    raise GeneratorError(
        f"the {label} server at {base_url} has several models ({', '.join(names)}): "
        f"pick one with --server {base_url}?model=NAME"
    )


def json_record(text: str, label: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise GeneratorError(
            f"the {label} server sent something that is not JSON: {text[:200]!r}"
        ) from exc
    if not isinstance(record, dict):
        raise GeneratorError(f"the {label} server sent an unexpected record: {text[:200]!r}")
    return record


def message_of(record: dict[str, Any]) -> str:
    error = record.get("error", record)
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def error_text(response: httpx.Response) -> str:
    try:
        record = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(record, dict):
        if "message" in record and "error" not in record:
            return str(record["message"])
        return message_of(record)
    return str(record)[:300]
