"""Start-up: the screen is usable at once, the model loads in a worker, early messages queue."""

from __future__ import annotations

import threading

from gptoss_chat.factory import LaunchOptions
from gptoss_chat.generator import GeneratorError, ReplayGenerator
from gptoss_chat.ui.app import make_app
from gptoss_chat.ui.widgets.chat_log import UserMessage
from gptoss_chat.ui.widgets.status_bar import StatusBar
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import ANSWER, finish_turn, submit, wait_until

SIZE = (130, 40)


async def test_messages_typed_while_loading_are_queued_then_sent(encoding, tmp_path):
    release = threading.Event()
    progress_seen = threading.Event()

    def load_model(options, enc, progress):
        progress(0.5, "reading weights")
        progress_seen.set()
        release.wait(10)
        return ReplayGenerator([enc.encode(ANSWER, allowed_special="all")], name="slow replay")

    options = LaunchOptions(workspace=tmp_path)
    app = make_app(
        options, history_path=None, load_encoding=lambda o: encoding, load_model=load_model
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, progress_seen.is_set)
        status = app.query_one(StatusBar)
        await wait_until(pilot, lambda: status.load_fraction == 0.5)
        assert app.query_one("#load-progress").display
        await submit(pilot, "early bird")
        message = app.query_one(UserMessage)
        assert message.has_class("-queued")
        assert app.session is None
        release.set()
        await wait_until(pilot, lambda: app.session is not None)
        await wait_until(pilot, lambda: bool(app.query(TurnView)))
        await finish_turn(pilot)
        assert not message.has_class("-queued")
        assert app.session.last_final_text().startswith("Hello!")
        assert status.model_name == "slow replay"
        assert not app.query_one("#load-progress").display


async def test_load_failure_is_a_notice_not_a_crash(tmp_path):
    def load_model(options, enc, progress):
        raise GeneratorError("no model folder given")

    app = make_app(
        LaunchOptions(workspace=tmp_path),
        history_path=None,
        load_encoding=lambda o: None,
        load_model=load_model,
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.query_one(StatusBar).model_name == "no model")
        assert any("no model folder given" in n.message for n in app._notifications)
        await submit(pilot, "anyone there?")
        assert app.query_one(UserMessage).has_class("-queued")
    assert app.return_code in (None, 0)


async def test_missing_encoding_module_is_reported(tmp_path):
    def load_encoding(options):
        raise ImportError("No module named 'gptoss_chat.encoding'")

    options = LaunchOptions(workspace=tmp_path)
    app = make_app(options, history_path=None, load_encoding=load_encoding)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.query_one(StatusBar).model_name == "no model")
        assert any("ImportError" in n.message for n in app._notifications)
