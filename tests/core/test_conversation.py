"""The conversation core against Harmony's documented examples and its failure modes."""

from __future__ import annotations

import asyncio

import pytest

from gptoss_chat.conversation import message_text
from gptoss_chat.events import (
    ChannelStarted,
    ErrorEvent,
    MessageAdded,
    ReasoningDelta,
    TextDelta,
    ToolDeclined,
    ToolFinished,
    ToolProposed,
    TurnDone,
)
from gptoss_chat.settings import ApprovalPolicy, ChatSettings
from gptoss_chat.tools.base import Decision
from tests.core.conftest import ScriptedApprover, WeatherTool, collect, make_session

# The cookbook's "OpenAI harmony response format" article, developer message with function
# tools: what a prompt must look like, byte for byte.
DOCUMENTED_PROMPT = """<|start|>system<|message|>You are ChatGPT, a large language model \
trained by OpenAI.
Knowledge cutoff: 2024-06
Current date: 2025-06-28

Reasoning: high

# Valid channels: analysis, commentary, final. Channel must be included for every message.
Calls to these tools must go to the commentary channel: 'functions'.<|end|>\
<|start|>developer<|message|># Instructions

Always respond in riddles

# Tools

## functions

namespace functions {

// Gets the current weather in the provided location.
type get_current_weather = (_: {
// The city and state, e.g. San Francisco, CA
location: string,
format?: "celsius" | "fahrenheit", // default: celsius
}) => any;

} // namespace functions<|end|><|start|>user<|message|>What is the weather like in SF?<|end|>\
<|start|>assistant"""

TOOL_CALL = (
    "<|channel|>analysis<|message|>Need to use function get_current_weather.<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.get_current_weather "
    '<|constrain|>json<|message|>{"location":"San Francisco"}<|call|>'
)
ANSWER = (
    "<|channel|>analysis<|message|>It is sunny.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Where fog dwells, the sun now shines: "
    "20 degrees.<|return|>"
)


async def test_prompt_matches_documented_rendering(encoding, script):
    settings = ChatSettings(reasoning="high", developer_message="Always respond in riddles")
    session = make_session(encoding, [script(ANSWER)], tools=[WeatherTool()], settings=settings)
    await collect(session.send("What is the weather like in SF?"))
    prompt = session.generator.prompts[0]
    assert encoding.decode(prompt) == DOCUMENTED_PROMPT


async def test_builtin_tools_appear_in_system_message(encoding, script):
    from openai_harmony import ToolNamespaceConfig

    from gptoss_chat.tools.base import Tool

    class Browser(Tool):
        name = "browser"

        def system_config(self):
            return ToolNamespaceConfig.browser()

        def propose(self, call):
            raise NotImplementedError

        def run(self, proposal):
            raise NotImplementedError

    session = make_session(encoding, [script(ANSWER)], tools=[Browser()])
    text = encoding.decode(session.render_prompt())
    assert "## browser" in text and "namespace browser {" in text
    session.tools.set_enabled("browser", False)
    assert "## browser" not in encoding.decode(session.render_prompt())


async def test_tool_call_and_result_follow_documented_format(encoding, script):
    tool = WeatherTool()
    approver = ScriptedApprover(Decision.approve())
    session = make_session(
        encoding, [script(TOOL_CALL), script(ANSWER)], tools=[tool], approver=approver
    )
    events = await collect(session.send("What is the weather like in SF?"))

    assert tool.runs == ['{"location":"San Francisco"}']
    assert approver.seen[0].title == "Weather in San Francisco"
    proposed = next(e for e in events if isinstance(e, ToolProposed))
    assert proposed.needs_decision
    assert any(isinstance(e, ToolFinished) for e in events)
    done = events[-1]
    assert isinstance(done, TurnDone) and not done.interrupted
    assert done.final_text == "Where fog dwells, the sun now shines: 20 degrees."
    assert len(done.stats) == 2

    # The second prompt holds the call and the tool's answer as Harmony renders them (the
    # recipient moves into the role part of the header, as openai-harmony writes history).
    second = encoding.decode(session.generator.prompts[1])
    assert second.endswith(
        "<|start|>assistant to=functions.get_current_weather<|channel|>commentary "
        '<|constrain|>json<|message|>{"location":"San Francisco"}<|call|>'
        "<|start|>functions.get_current_weather to=assistant<|channel|>commentary<|message|>"
        '{"sunny": true, "temperature": 20}<|end|><|start|>assistant'
    )


async def test_analysis_of_earlier_turns_is_dropped(encoding, script):
    session = make_session(encoding, [script(ANSWER), script(ANSWER)])
    await collect(session.send("first"))
    await collect(session.send("second"))
    first, second = (encoding.decode(p) for p in session.generator.prompts)
    assert "It is sunny." not in second
    assert "<|channel|>final<|message|>Where fog dwells" in second
    assert second.startswith(first.removesuffix("<|start|>assistant"))


async def test_events_stream_reasoning_then_answer(encoding, script):
    session = make_session(encoding, [script(ANSWER)])
    events = await collect(session.send("hi"))
    channels = [e.channel for e in events if isinstance(e, ChannelStarted)]
    assert channels == ["analysis", "final"]
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    answer = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert reasoning == "It is sunny."
    assert answer.startswith("Where fog dwells")
    added = [e for e in events if isinstance(e, MessageAdded)]
    assert [m.message.author.role.value for m in added] == ["user", "assistant", "assistant"]


async def test_denial_with_reason_goes_back_to_the_model(encoding, script):
    tool = WeatherTool()
    approver = ScriptedApprover(Decision.deny("use the cached forecast"))
    session = make_session(
        encoding, [script(TOOL_CALL), script(ANSWER)], tools=[tool], approver=approver
    )
    events = await collect(session.send("weather?"))
    assert tool.runs == []
    assert any(isinstance(e, ToolDeclined) for e in events)
    second = encoding.decode(session.generator.prompts[1])
    assert "The user declined this tool call. Reason: use the cached forecast" in second
    assert isinstance(events[-1], TurnDone) and events[-1].error is None


async def test_allow_for_session_skips_later_approvals(encoding, script):
    tool = WeatherTool()
    approver = ScriptedApprover(Decision.allow_session())
    completions = [script(TOOL_CALL), script(TOOL_CALL), script(ANSWER)]
    session = make_session(encoding, completions, tools=[tool], approver=approver)
    events = await collect(session.send("weather twice"))
    assert len(tool.runs) == 2
    assert len(approver.seen) == 1
    assert [e.needs_decision for e in events if isinstance(e, ToolProposed)] == [True, False]


@pytest.mark.parametrize(
    ("policy", "asked"),
    [(ApprovalPolicy.ASK, 2), (ApprovalPolicy.ONCE, 1), (ApprovalPolicy.ALWAYS, 0)],
)
async def test_approval_policies(encoding, script, policy, asked):
    tool = WeatherTool()
    approver = ScriptedApprover(Decision.approve(), Decision.approve())
    settings = ChatSettings(approval={"weather": policy})
    completions = [script(TOOL_CALL), script(TOOL_CALL), script(ANSWER)]
    session = make_session(
        encoding, completions, tools=[tool], approver=approver, settings=settings
    )
    await collect(session.send("weather twice"))
    assert len(approver.seen) == asked
    assert len(tool.runs) == 2


async def test_unknown_tool_is_reported_to_user_and_model(encoding, script):
    call = (
        "<|channel|>commentary to=functions.launch_rockets <|constrain|>json"
        '<|message|>{"count": 3}<|call|>'
    )
    session = make_session(encoding, [script(call), script(ANSWER)], tools=[WeatherTool()])
    events = await collect(session.send("launch"))
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors and errors[0].kind == "unknown_tool"
    assert "functions.launch_rockets" in errors[0].message
    second = encoding.decode(session.generator.prompts[1])
    assert "<|start|>functions.launch_rockets to=assistant" in second
    assert "functions.get_current_weather" in second.split("launch_rockets to=assistant")[1]
    assert isinstance(events[-1], TurnDone) and events[-1].final_text


async def test_disabled_tool_counts_as_unknown(encoding, script):
    tool = WeatherTool()
    session = make_session(encoding, [script(TOOL_CALL), script(ANSWER)], tools=[tool])
    session.tools.set_enabled("weather", False)
    events = await collect(session.send("weather?"))
    assert tool.runs == []
    assert any(isinstance(e, ErrorEvent) and e.kind == "unknown_tool" for e in events)


async def test_tool_exception_becomes_error_message(encoding, script):
    tool = WeatherTool(fail=True)
    approver = ScriptedApprover(Decision.approve())
    session = make_session(
        encoding, [script(TOOL_CALL), script(ANSWER)], tools=[tool], approver=approver
    )
    events = await collect(session.send("weather?"))
    assert any(
        isinstance(e, ErrorEvent) and "weather service exploded" in e.message for e in events
    )
    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert finished.result.is_error
    assert "weather service exploded" in encoding.decode(session.generator.prompts[1])
    assert isinstance(events[-1], TurnDone)


async def test_bad_arguments_go_back_to_the_model(encoding, script):
    call = (
        "<|channel|>commentary to=functions.get_current_weather <|constrain|>json"
        "<|message|>{location: nowhere<|call|>"
    )
    session = make_session(encoding, [script(call), script(ANSWER)], tools=[WeatherTool()])
    events = await collect(session.send("weather?"))
    assert any(isinstance(e, ErrorEvent) and "not valid JSON" in e.message for e in events)
    assert "Error: arguments are not valid JSON" in encoding.decode(session.generator.prompts[1])


async def test_round_trip_cap_stops_a_looping_model(encoding, script):
    settings = ChatSettings(max_tool_round_trips=3, approval={"weather": ApprovalPolicy.ALWAYS})
    tool = WeatherTool()
    session = make_session(encoding, [script(TOOL_CALL)], tools=[tool], settings=settings)
    events = await collect(session.send("loop forever"))
    assert len(tool.runs) == 3
    done = events[-1]
    assert isinstance(done, TurnDone) and "3 tool calls" in (done.error or "")
    assert any(isinstance(e, ErrorEvent) and e.kind == "round_trips" for e in events)


async def test_invalid_harmony_keeps_partial_text_and_session_usable(encoding, script):
    # After <|end|> a message must begin with <|start|>: plain text there is invalid Harmony.
    broken = script("<|channel|>final<|message|>Half an answer<|end|>garbage<|end|>")
    session = make_session(encoding, [broken, script(ANSWER)])
    events = await collect(session.send("hi"))
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors and errors[0].kind == "harmony"
    done = events[-1]
    assert isinstance(done, TurnDone) and done.interrupted and done.error
    assert done.final_text == "Half an answer"
    assert message_text(session.entries[-1].message) == "Half an answer"
    events = await collect(session.send("try again"))
    assert isinstance(events[-1], TurnDone) and events[-1].error is None


async def test_cancel_mid_stream_keeps_partial_and_marks_it(encoding, script):
    long_answer = script("<|channel|>final<|message|>" + "word " * 400 + "<|return|>")
    session = make_session(encoding, [long_answer, script(ANSWER)], delay=0.002)
    seen: list[str] = []
    async for event in session.send("talk"):
        if isinstance(event, TextDelta):
            seen.append(event.text)
            if len(seen) == 20:
                session.cancel()
        last = event
    assert isinstance(last, TurnDone) and last.interrupted and last.error is None
    assert 20 <= len(seen) < 300
    entry = session.entries[-1]
    assert entry.interrupted and message_text(entry.message).startswith("word word")
    assert not session.busy
    events = await collect(session.send("again"))
    assert isinstance(events[-1], TurnDone) and not events[-1].interrupted


async def test_cancel_while_waiting_for_approval(encoding, script):
    tool = WeatherTool()
    waiting = asyncio.Event()

    async def slow_approver(proposal):
        waiting.set()
        await asyncio.sleep(30)
        return Decision.approve()

    session = make_session(encoding, [script(TOOL_CALL), script(ANSWER)], tools=[tool])
    session.approver = slow_approver

    async def stop_when_asked():
        await waiting.wait()
        session.cancel()

    stopper = asyncio.create_task(stop_when_asked())
    events = await asyncio.wait_for(collect(session.send("weather?")), timeout=10)
    await stopper
    assert tool.runs == []
    assert isinstance(events[-1], TurnDone) and events[-1].interrupted


async def test_token_limit_marks_answer_interrupted(encoding, script):
    from gptoss_chat.generator import SamplingOptions

    settings = ChatSettings(sampling=SamplingOptions(max_tokens=8))
    session = make_session(encoding, [script(ANSWER)], settings=settings)
    events = await collect(session.send("hi"))
    assert any(isinstance(e, ErrorEvent) and e.kind == "length" for e in events)
    assert isinstance(events[-1], TurnDone) and events[-1].interrupted


async def test_context_overflow_is_an_error_event(encoding, script):
    session = make_session(encoding, [script(ANSWER)])
    session.generator.context_length = 10
    events = await collect(session.send("hi"))
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.kind == "context" and "context" in error.message
    assert isinstance(events[-1], TurnDone) and events[-1].error


async def test_retry_replaces_the_last_answer(encoding, script):
    other = script("<|channel|>final<|message|>Second try.<|return|>")
    session = make_session(encoding, [script(ANSWER), other])
    await collect(session.send("hi"))
    events = await collect(session.retry())
    assert events[-1].final_text == "Second try."
    roles = [e.message.author.role.value for e in session.entries]
    assert roles == ["user", "assistant"]
    assert session.last_final_text() == "Second try."


async def test_reasoning_change_applies_to_next_turn(encoding, script):
    session = make_session(encoding, [script(ANSWER), script(ANSWER)])
    await collect(session.send("one"))
    session.settings.reasoning = "low"
    await collect(session.send("two"))
    first, second = (encoding.decode(p) for p in session.generator.prompts)
    assert "Reasoning: medium" in first and "Reasoning: low" in second


async def test_listeners_see_every_event(encoding, script):
    session = make_session(encoding, [script(ANSWER)])
    seen = []
    session.listeners.append(lambda s, event: seen.append(event))
    events = await collect(session.send("hi"))
    assert seen == events


async def test_tool_guides_join_the_developer_instructions(encoding, script):
    from gptoss_chat.tools.apply_patch import ApplyPatchTool

    tool = ApplyPatchTool(instructions_in_description=False)
    settings = ChatSettings(developer_message="Be terse.")
    session = make_session(encoding, [script(ANSWER)], tools=[tool], settings=settings)
    text = encoding.decode(session.render_prompt())
    developer = text.split("<|start|>developer<|message|>", 1)[1].split("<|end|>", 1)[0]
    assert developer.startswith("# Instructions\n\nBe terse.\n" + tool.instructions.strip()[:40])
    assert "type apply_patch = (_: string) => any;" in developer
    session.tools.set_enabled("apply_patch", False)
    assert tool.instructions.strip()[:40] not in encoding.decode(session.render_prompt())
