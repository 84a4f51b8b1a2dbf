"""vLLM's OpenAI-compatible /v1/completions: token ids in, token ids (or text) out, over SSE."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import httpx

from gptoss_chat.generator import GeneratorError, SamplingOptions
from gptoss_chat.remote.base import RemoteGenerator, json_record, message_of, pick_model


class VLLMGenerator(RemoteGenerator):
    label = "vLLM"

    def probe(self, model: str | None, context: int | None) -> None:
        data = self._get_json("/v1/models")
        models = {m.get("id"): m for m in data.get("data", []) if isinstance(m, dict)}
        if not models:
            raise GeneratorError(f"the vLLM server at {self.base_url} serves no model")
        if model is None:
            model = pick_model(list(models), self.label, self.base_url)
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
            record = json_record(payload, self.label)
            if "error" in record:
                raise GeneratorError(f"the vLLM server reported an error: {message_of(record)}")
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
