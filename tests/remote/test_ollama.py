"""The Ollama backend against a local server speaking Ollama's raw /api/generate."""

from __future__ import annotations

import asyncio

import pytest

from gptoss_chat.events import ErrorEvent, TurnDone
from gptoss_chat.generator import CancelToken, GeneratorError, SamplingOptions
from gptoss_chat.remote import OLLAMA_DEFAULT_CONTEXT, connect
from tests.remote.conftest import ANSWER, chat_with, drain, pieces
from tests.remote.servers import FakeServer, Reply, Stream, ollama_lines, ollama_tags

NDJSON = "application/x-ndjson"


def answer_stream(encoding, text: str = ANSWER, **kwargs) -> Stream:
    # Ollama strips the stop token it stopped on.
    texts = [encoding.decode(ids) for ids in pieces(encoding, text.removesuffix("<|return|>"))]
    return Stream(ollama_lines(texts), content_type=NDJSON, **kwargs)


def server_for(route, *models: str) -> FakeServer:
    return FakeServer(
        {
            ("GET", "/api/tags"): ollama_tags(*(models or ("gpt-oss:20b", "llama3:8b"))),
            ("POST", "/api/generate"): route,
        }
    )


def test_a_chat_turn_streams_through_ollama_raw_generate(encoding) -> None:
    with server_for(lambda body: answer_stream(encoding)) as server:
        generator = connect("ollama", server.url, encoding=encoding)
        chat = chat_with(encoding, generator)
        chat.settings.sampling = SamplingOptions(temperature=0.5, seed=11)
        events = asyncio.run(drain(chat.send("hello")))
        body = server.posts("/api/generate")[0]
    done = events[-1]
    assert isinstance(done, TurnDone) and done.error is None and not done.interrupted
    assert done.final_text == "Hello from the server!"
    assert generator.model == "gpt-oss:20b", "the only gpt-oss model is picked"
    assert body["raw"] is True and body["stream"] is True and body["model"] == "gpt-oss:20b"
    del chat.entries[1:]
    assert body["prompt"] == encoding.decode(chat.render_prompt())
    assert body["prompt"].endswith("<|start|>assistant")
    options = body["options"]
    assert options["temperature"] == 0.5 and options["seed"] == 11
    assert options["num_ctx"] == OLLAMA_DEFAULT_CONTEXT
    assert set(options["stop"]) == {"<|return|>", "<|call|>"}


def test_the_context_flag_sets_num_ctx(encoding) -> None:
    with server_for(lambda body: answer_stream(encoding)) as server:
        generator = connect(
            "ollama", server.url + "?model=llama3:8b", context=4096, encoding=encoding
        )
        list(generator.generate([1, 2], stop_tokens={200002}, sampling=SamplingOptions()))
        body = server.posts("/api/generate")[0]
    assert body["model"] == "llama3:8b"
    assert body["options"]["num_ctx"] == 4096 and body["options"]["num_predict"] == 4094


def test_an_error_status_names_the_problem(encoding) -> None:
    route = lambda body: Reply(404, {"error": "model 'gpt-oss:20b' not found"})  # noqa: E731
    with server_for(route) as server:
        chat = chat_with(encoding, connect("ollama", server.url, encoding=encoding))
        events = asyncio.run(drain(chat.send("hello")))
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.message == (
        f"the Ollama server at {server.url} answered 404: model 'gpt-oss:20b' not found"
    )


def test_an_error_line_in_the_stream(encoding) -> None:
    records = ['{"response": "<|channel|>", "done": false}\n', '{"error": "out of memory"}\n']
    with server_for(lambda body: Stream(records, content_type=NDJSON)) as server:
        generator = connect("ollama", server.url, encoding=encoding)
        with pytest.raises(GeneratorError, match="the Ollama server reported an error: out of"):
            list(generator.generate([1], stop_tokens={200002}, sampling=SamplingOptions()))


def test_a_dropped_connection(encoding) -> None:
    with server_for(lambda body: answer_stream(encoding, drop_after=3)) as server:
        chat = chat_with(encoding, connect("ollama", server.url, encoding=encoding))
        events = asyncio.run(drain(chat.send("hello")))
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert "dropped the connection after" in error.message and server.url in error.message
    assert events[-1].interrupted


def test_a_stream_that_ends_without_done(encoding) -> None:
    records = ['{"response": "<|channel|>final<|message|>Hi", "done": false}\n']
    with server_for(lambda body: Stream(records, content_type=NDJSON)) as server:
        generator = connect("ollama", server.url, encoding=encoding)
        with pytest.raises(GeneratorError, match="ended the stream after 4 tokens without"):
            list(generator.generate([1], stop_tokens={200002}, sampling=SamplingOptions()))


def test_length_limit_is_reported_as_length(encoding) -> None:
    records = ollama_lines(["<|channel|>final<|message|>Hi"], done_reason="length")
    with server_for(lambda body: Stream(records, content_type=NDJSON)) as server:
        generator = connect("ollama", server.url, encoding=encoding)
        ids = list(generator.generate([1], stop_tokens={200002}, sampling=SamplingOptions()))
    assert 200002 not in ids and generator.last_stats.stop_reason == "length"


def test_cancel_stops_reading(encoding) -> None:
    with server_for(lambda body: answer_stream(encoding, delay=0.3)) as server:
        generator = connect("ollama", server.url, encoding=encoding)
        cancel = CancelToken()
        tokens = generator.generate(
            [1], stop_tokens={200002}, sampling=SamplingOptions(), cancel=cancel
        )
        next(tokens)
        cancel.cancel()
        list(tokens)
        assert server.disconnected.wait(5)
    assert generator.last_stats.stop_reason == "cancelled"


def test_no_models_and_a_non_ollama_server(encoding) -> None:
    with server_for(lambda body: answer_stream(encoding), "x") as server:
        pass
    empty = FakeServer({("GET", "/api/tags"): lambda body: Reply(200, {"models": []})})
    with empty, pytest.raises(GeneratorError, match="has no models: ollama pull gpt-oss:20b"):
        connect("ollama", empty.url, encoding=encoding)
    html = FakeServer({("GET", "/api/tags"): lambda body: Reply(200, "<html>hi</html>")})
    with html, pytest.raises(GeneratorError, match="did not answer JSON: is it really a Ollama"):
        connect("ollama", html.url, encoding=encoding)
    with pytest.raises(GeneratorError, match="cannot reach the Ollama server"):
        connect("ollama", server.url, encoding=encoding)
