"""Full garbage collections are held off while a turn streams, and given back after it."""

from __future__ import annotations

import gc

import pytest

from gptoss_chat.ui import collector_pause
from tests.ui.conftest import ANSWER, GatedReplay, build_session, finish_turn, submit, wait_until


@pytest.fixture(autouse=True)
def _restore_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_hold_freezes_and_defers_full_collections_until_released():
    pause = collector_pause.CollectorPause()
    before = gc.get_threshold()

    pause.hold()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[2] == collector_pause.HELD_GEN2_THRESHOLD
    pause.hold()  # a second turn before the release: still one saved threshold
    pause.release()

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


async def test_a_turn_holds_collections_and_releases_them_after(
    encoding, make_test_app, monkeypatch
):
    monkeypatch.setattr(collector_pause, "RELEASE_AFTER_SECONDS", 0.2)
    script = encoding.encode(ANSWER, allowed_special="all")
    generator = GatedReplay([script], pause_after=5)
    app = make_test_app(build_session(encoding, [], generator=generator))
    async with app.run_test(size=(120, 36)) as pilot:
        await submit(pilot, "hi")
        await wait_until(pilot, generator.paused.is_set)
        assert gc.get_freeze_count() > 0  # mid-turn

        generator.gate.set()
        await finish_turn(pilot)
        await wait_until(pilot, lambda: gc.get_freeze_count() == 0)
        assert gc.get_threshold()[2] != collector_pause.HELD_GEN2_THRESHOLD


async def test_quitting_mid_turn_gives_the_collector_back(encoding, make_test_app):
    before = gc.get_threshold()
    script = encoding.encode(ANSWER, allowed_special="all")
    generator = GatedReplay([script], pause_after=5)
    app = make_test_app(build_session(encoding, [], generator=generator))
    async with app.run_test(size=(120, 36)) as pilot:
        await submit(pilot, "hi")
        await wait_until(pilot, generator.paused.is_set)
        assert gc.get_freeze_count() > 0
    generator.gate.set()

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
