"""Ollama's raw /api/generate: the rendered prompt as text, JSON lines back."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import httpx

from gptoss_chat.generator import GeneratorError, SamplingOptions
from gptoss_chat.remote.base import RemoteGenerator, json_record, message_of, pick_model

OLLAMA_DEFAULT_CONTEXT = 32768
"""Ollama's own default window is a few thousand tokens; ask for more unless --context says."""


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
            model = pick_model(names, self.label, self.base_url)
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
            record = json_record(line, self.label)
            if "error" in record:
                raise GeneratorError(f"the Ollama server reported an error: {message_of(record)}")
            yield record

    def _read(self, record: dict[str, Any]) -> tuple[list[int], str | None, Any]:
        ids = self.encoding.encode(record.get("response") or "", allowed_special="all")
        if not record.get("done"):
            return ids, None, None
        reason = record.get("done_reason") or "stop"
        return ids, "length" if reason == "length" else "stop", None
