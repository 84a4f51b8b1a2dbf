"""The vLLM backend against a local server speaking vLLM's OpenAI-compatible completions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptoss_chat.events import ErrorEvent, TextDelta, TurnDone
from gptoss_chat.generator import (
    CancelToken,
    ContextOverflowError,
    GeneratorError,
    SamplingOptions,
)
from gptoss_chat.remote import connect
from tests.remote.conftest import ANSWER, chat_with, drain, pieces
from tests.remote.servers import FakeServer, Reply, Stream, vllm_chunks, vllm_models

MODEL = "openai/gpt-oss-120b"
REPO = Path(__file__).resolve().parents[2]


def answer_stream(encoding, text: str = ANSWER, *, with_ids: bool = True, **kwargs) -> Stream:
    chunks = [(ids if with_ids else None, encoding.decode(ids)) for ids in pieces(encoding, text)]
    return Stream(vllm_chunks(chunks), **kwargs)


def server_for(encoding, completion) -> FakeServer:
    return FakeServer(
        {
            ("GET", "/v1/models"): vllm_models(MODEL),
            ("POST", "/v1/completions"): completion,
        }
    )


def test_a_chat_turn_streams_through_vllm(encoding) -> None:
    with server_for(encoding, lambda body: answer_stream(encoding)) as server:
        generator = connect("vllm", server.url + "/v1", encoding=encoding)
        chat = chat_with(encoding, generator)
        events = asyncio.run(drain(chat.send("hello")))
        body = server.posts("/v1/completions")[0]
    done = events[-1]
    assert isinstance(done, TurnDone) and done.error is None
    assert done.final_text == "Hello from the server!"
    assert [e.text for e in events if isinstance(e, TextDelta)]
    assert body["model"] == MODEL
    assert body["prompt"] == generator_prompt(chat)
    assert body["stream"] is True and body["skip_special_tokens"] is False
    assert body["return_token_ids"] is True
    assert set(body["stop_token_ids"]) == set(encoding.stop_tokens_for_assistant_actions())
    assert body["max_tokens"] == 8192 - len(body["prompt"])
    assert generator.name == f"vLLM {MODEL} @ {server.url}"
    assert generator.context_length == 8192
    assert generator.last_stats.stop_reason == "stop"


def generator_prompt(chat) -> list[int]:
    """The prompt of the first turn: everything up to (excluding) the answer."""
    del chat.entries[1:]
    return chat.render_prompt()


def test_an_old_server_that_sends_only_text_and_strips_the_stop_token(encoding) -> None:
    text_only = ANSWER.removesuffix("<|return|>")
    with server_for(
        encoding, lambda body: answer_stream(encoding, text_only, with_ids=False)
    ) as server:
        chat = chat_with(encoding, connect("vllm", server.url, encoding=encoding))
        events = asyncio.run(drain(chat.send("hello")))
    assert events[-1].final_text == "Hello from the server!"
    assert events[-1].error is None and not events[-1].interrupted


def test_a_stripped_stop_after_a_tool_call_is_call(encoding) -> None:
    call = '<|channel|>commentary to=functions.lookup <|constrain|>json<|message|>{"q": 1}'
    with server_for(encoding, lambda body: answer_stream(encoding, call, with_ids=False)) as server:
        generator = connect("vllm", server.url, encoding=encoding)
        prompt = encoding.encode("<|start|>assistant", allowed_special="all")
        ids = list(
            generator.generate(
                prompt,
                stop_tokens=set(encoding.stop_tokens_for_assistant_actions()),
                sampling=SamplingOptions(),
            )
        )
    assert encoding.decode(ids[-1:]) == "<|call|>"


def test_sampling_options_reach_the_server(encoding) -> None:
    with server_for(encoding, lambda body: answer_stream(encoding)) as server:
        generator = connect("vllm", server.url + "?model=" + MODEL, encoding=encoding)
        list(
            generator.generate(
                [1, 2, 3],
                stop_tokens={200002},
                sampling=SamplingOptions(temperature=0.25, top_p=0.5, seed=3, max_tokens=40),
            )
        )
        body = server.posts("/v1/completions")[0]
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (
        0.25,
        0.5,
        3,
        40,
    )


def test_an_error_status_becomes_a_clear_message_and_the_chat_goes_on(encoding) -> None:
    answers = [
        Reply(500, {"object": "error", "message": "CUDA out of memory", "code": 500}),
        answer_stream(encoding),
    ]
    with server_for(encoding, lambda body: answers.pop(0)) as server:
        chat = chat_with(encoding, connect("vllm", server.url, encoding=encoding))
        first = asyncio.run(drain(chat.send("hello")))
        second = asyncio.run(drain(chat.send("again")))
    errors = [e for e in first if isinstance(e, ErrorEvent)]
    assert errors[0].message == (
        f"the vLLM server at {server.url} answered 500: CUDA out of memory"
    )
    assert errors[0].kind == "generator"
    assert second[-1].final_text == "Hello from the server!"


def test_a_context_error_from_the_server_is_a_context_overflow(encoding) -> None:
    message = (
        "This model's maximum context length is 4096 tokens. However, you requested "
        "5000 tokens (4000 in the messages, 1000 in the completion)."
    )
    route = lambda body: Reply(400, {"object": "error", "message": message})  # noqa: E731
    with server_for(encoding, route) as server:
        generator = connect("vllm", server.url, encoding=encoding)
        with pytest.raises(ContextOverflowError) as info:
            list(generator.generate([1] * 100, stop_tokens={200002}, sampling=SamplingOptions()))
    assert info.value.available == 4096


def test_a_prompt_longer_than_the_context_fails_before_any_request(encoding) -> None:
    with server_for(encoding, lambda body: answer_stream(encoding)) as server:
        generator = connect("vllm", server.url, context=1000, encoding=encoding)
        with pytest.raises(ContextOverflowError):
            generator.generate([1] * 1000, stop_tokens={200002}, sampling=SamplingOptions())
        assert server.posts("/v1/completions") == []


def test_a_dropped_connection_mid_answer(encoding) -> None:
    # 5 chunks of 3 ids: the analysis and "Hello from the" of the final answer.
    with server_for(encoding, lambda body: answer_stream(encoding, drop_after=5)) as server:
        chat = chat_with(encoding, connect("vllm", server.url, encoding=encoding))
        events = asyncio.run(drain(chat.send("hello")))
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.message.startswith(
        f"the vLLM server at {server.url} dropped the connection after 15 tokens"
    )
    assert events[-1].interrupted
    assert chat.entries[-1].interrupted, "what arrived is kept, marked interrupted"
    assert chat.entries[-1].message.content[0].text == "Hello from the"


def test_an_error_record_inside_the_stream(encoding) -> None:
    records = [*vllm_chunks([([200005], "<|channel|>")], finish=None)[:1]]
    records.append('data: {"error": {"message": "engine died", "code": 500}}\n\n')
    with server_for(encoding, lambda body: Stream(records)) as server:
        generator = connect("vllm", server.url, encoding=encoding)
        with pytest.raises(GeneratorError, match="the vLLM server reported an error: engine died"):
            list(generator.generate([1], stop_tokens={200002}, sampling=SamplingOptions()))


def test_cancel_closes_the_stream(encoding) -> None:
    slow = lambda body: answer_stream(encoding, delay=0.3)  # noqa: E731
    with server_for(encoding, slow) as server:
        generator = connect("vllm", server.url, encoding=encoding)
        cancel = CancelToken()
        tokens = generator.generate(
            [1], stop_tokens={200002}, sampling=SamplingOptions(), cancel=cancel
        )
        first = next(tokens)
        started = time.monotonic()
        cancel.cancel()
        rest = list(tokens)
        elapsed = time.monotonic() - started
        assert server.disconnected.wait(5), "the server saw the client go away"
    assert first == pieces(encoding, ANSWER)[0][0]
    assert len(rest) <= 2, "the tokens of the chunk already received, then nothing"
    assert elapsed < 0.5
    assert generator.last_stats.stop_reason == "cancelled"


def test_unreachable_server_and_wrong_model(encoding) -> None:
    with FakeServer({}) as server:
        dead_url = server.url
    with pytest.raises(GeneratorError, match=f"cannot reach the vLLM server at {dead_url}"):
        connect("vllm", dead_url, encoding=encoding)
    one = server_for(encoding, lambda body: answer_stream(encoding))
    with one, pytest.raises(GeneratorError, match="does not serve 'nope'"):
        connect("vllm", one.url + "?model=nope", encoding=encoding)
    two = FakeServer({("GET", "/v1/models"): vllm_models("a", "b")})
    with two, pytest.raises(GeneratorError, match=r"several models \(a, b\).*\?model=NAME"):
        connect("vllm", two.url, encoding=encoding)
    with pytest.raises(GeneratorError, match="must be an http"):
        connect("vllm", "localhost:8000", encoding=encoding)


def test_one_shot_chat_through_the_command_line(encoding, user_dirs) -> None:
    with server_for(encoding, lambda body: answer_stream(encoding)) as server:
        child = subprocess.run(
            # --server alone means vLLM; the one positional argument is the prompt.
            [sys.executable, "-m", "gptoss_chat", "--server", server.url, "hello there"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "Hello from the server!"
    body = json.dumps(server.posts("/v1/completions")[0]["prompt"])
    assert body.startswith("[200006")  # <|start|>: token ids, not text
