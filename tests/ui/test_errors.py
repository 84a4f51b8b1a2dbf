"""Every error the core reports is shown; nothing takes the app down."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

from gptoss_chat.generator import CancelToken, GeneratorError, ReplayGenerator, SamplingOptions
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import AFTER_TOOL, ANSWER, PYTHON_CALL, build_session, finish_turn, submit

SIZE = (130, 40)


class FailingReplay(ReplayGenerator):
    """Replays `fail_after` tokens, then fails as a broken engine would."""

    def __init__(self, scripts: list[list[int]], fail_after: int) -> None:
        super().__init__(scripts, name="failing replay")
        self.fail_after = fail_after

    def generate(
        self,
        tokens: Sequence[int],
        *,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        inner = super().generate(tokens, stop_tokens=stop_tokens, sampling=sampling, cancel=cancel)

        def failing() -> Iterator[int]:
            for index, token in enumerate(inner):
                if index == self.fail_after:
                    raise GeneratorError("CUDA error: an illegal memory access was encountered")
                yield token

        return failing()


def error_notices(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


async def test_generator_failure_shows_inline_and_as_notification(encoding, make_test_app):
    script = encoding.encode(ANSWER, allowed_special="all")
    session = build_session(encoding, [], generator=FailingReplay([script], fail_after=12))
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hello")
        await finish_turn(pilot)
        assert any("illegal memory access" in m for m in error_notices(app))
        inline = app.query_one(".inline-error")
        assert "illegal memory access" in str(inline.render())
        # The conversation stays usable: the next message gets an answer.
        session.generator = ReplayGenerator([script])
        await submit(pilot, "again")
        await finish_turn(pilot)
        assert session.last_final_text().startswith("Hello!")


async def test_unknown_tool_is_reported(encoding, make_test_app):
    session = build_session(encoding, [PYTHON_CALL, AFTER_TOOL])  # no python tool
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "compute")
        await finish_turn(pilot)
        assert any("no tool named 'python'" in m for m in error_notices(app))
        assert session.last_final_text() == "The answer is **42**."


async def test_a_bug_below_the_ui_becomes_a_notice(encoding, make_test_app):
    session = build_session(encoding, [ANSWER])

    def broken_listener(session, event):
        raise RuntimeError("listener exploded")

    session.listeners.append(broken_listener)
    app = make_test_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hello")
        await finish_turn(pilot)
        assert any("listener exploded" in m for m in error_notices(app))
        assert app.query_one(TurnView)
        assert app.is_running


async def test_quitting_mid_answer_leaves_no_thread_error(encoding, make_test_app, monkeypatch):
    import threading

    from tests.ui.conftest import GatedReplay, wait_until

    failures: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    script = encoding.encode(ANSWER, allowed_special="all")
    generator = GatedReplay([script], pause_after=5)
    app = make_test_app(build_session(encoding, [], generator=generator))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hello")
        await wait_until(pilot, generator.paused.is_set)
        await pilot.press("ctrl+q")
    threads = [t for t in threading.enumerate() if t.name == "gptoss-generate"]
    for thread in threads:
        thread.join(timeout=5)
    assert failures == []
    assert not any(t.is_alive() for t in threads)
