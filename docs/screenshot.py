"""Regenerate docs/screenshot.svg: the main screen in the middle of the demo conversation.

    PYTHONPATH=. python docs/screenshot.py

Runs the real app headless on the demo replay with the python tool on (it runs in Docker, as
in normal use), asks the demo's two questions, approves the tool call and saves the screen.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gptoss_chat.demo import DEMO_REPLAY
from gptoss_chat.factory import LaunchOptions
from gptoss_chat.ui.app import make_app
from gptoss_chat.ui.widgets.prompt_input import PromptInput

OUT = Path(__file__).with_name("screenshot.svg")


async def wait_for(pilot, predicate, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("the demo did not get there in time")
        await pilot.pause(0.05)


async def main() -> None:
    options = LaunchOptions(
        model_dir=str(DEMO_REPLAY), backend="replay", tools_enabled={"python"}, theme="dark"
    )
    app = make_app(options, history_path=None)
    async with app.run_test(size=(150, 46)) as pilot:
        await wait_for(pilot, lambda: app.session is not None)
        screen = app.chat_screen
        questions = ("How do I read a huge CSV in Python?", "What is the 20th Fibonacci number?")
        for question in questions:
            prompt = app.query_one(PromptInput)
            prompt.load_text(question)
            await pilot.press("enter")
            await pilot.pause(0.2)
            await wait_for(pilot, lambda: not screen.busy or app.screen is not screen)
            if app.screen is not screen:
                await pilot.press("y")  # approve the python call
                await wait_for(pilot, lambda: not screen.busy)
        for block in screen.query(".tool-block"):
            block.collapsed = False
        prompt.cursor_blink = False
        await pilot.pause(0.5)
        app.save_screenshot(filename=OUT.name, path=str(OUT.parent))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
