"""`gptoss-chat browse` through a real subprocess, against the local fixture servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_chat.tools.base import ToolCall
from gptoss_chat.tools.browser.backends import FetchLimits, HttpFetcher, KeylessBackend
from gptoss_chat.tools.browser.safety import UrlGuard
from gptoss_chat.tools.browser.tool import BrowserTool
from tests.tools.browser.servers import EXA_KEY, ExaApi, PageHandler, exa_handler, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve(PageHandler) as base:
        yield base


@pytest.fixture(scope="module")
def exa_base(site: str) -> Iterator[str]:
    with serve(exa_handler(ExaApi(page_base=site))) as base:
        yield base


def browse(*arguments: str, exa_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "EXA_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    if exa_key:
        env["EXA_API_KEY"] = exa_key
    return subprocess.run(
        [sys.executable, "-m", "gptoss_chat", "browse", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_open_prints_exactly_the_models_view(site: str) -> None:
    url = f"{site}/article.html"
    done = browse("--allow-local", "open", url)
    assert done.returncode == 0, done.stderr
    tool = BrowserTool(KeylessBackend(HttpFetcher(UrlGuard.allowing_local(), FetchLimits())))
    result = tool.run(tool.propose(ToolCall("browser.open", json.dumps({"id": url}))))
    assert done.stdout == result.messages[0].content[0].text + "\n"
    assert done.stdout.startswith(f"[0] Harmony Tides — Coastal Notes ({url})\n**viewing lines")


def test_open_with_loc_and_num_lines(site: str) -> None:
    done = browse("--allow-local", "open", f"{site}/long.html", "--loc", "100", "--num-lines", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("**viewing lines [100 - 102] of ")
    assert [line.split(":")[0] for line in lines[3:]] == ["L100", "L101", "L102"]


def test_find_prints_the_find_results_view(site: str) -> None:
    done = browse("--allow-local", "find", "Oban", f"{site}/article.html")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == (
        "[1] Find results for text: `Oban` in `Harmony Tides — Coastal Notes` "
        f"({site}/article.html/find?pattern=Oban)"
    )
    assert "# 【0†match at L" in done.stdout


def test_search_with_exa_at_a_local_base_url(exa_base: str, site: str) -> None:
    done = browse(
        "--backend",
        "exa",
        "--exa-base-url",
        exa_base,
        "search",
        "tide tables",
        "--topn",
        "2",
        exa_key=EXA_KEY,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        "[0] tide tables",
        "**viewing lines [0 - 3] of 3**",
        "",
    ]
    assert "【1†tidectl reference†" in done.stdout


def test_local_addresses_need_the_flag(site: str) -> None:
    done = browse("open", f"{site}/article.html")
    assert done.returncode == 1
    assert "refusing to connect to non-public address 127.0.0.1" in done.stderr
    assert done.stdout == ""


def test_file_urls_are_refused() -> None:
    done = browse("--allow-local", "open", "file:///etc/passwd")
    assert done.returncode == 1
    assert "only http and https URLs can be opened" in done.stderr
    assert "root:" not in done.stdout + done.stderr


def test_exa_without_key_is_explained() -> None:
    done = browse("--backend", "exa", "search", "tides")
    assert done.returncode == 2
    assert "the Exa backend needs an API key: set EXA_API_KEY" in done.stderr


def test_timeout_flag(site: str) -> None:
    done = browse("--allow-local", "--timeout", "0.5", "open", f"{site}/slow.html")
    assert done.returncode == 1
    assert "timed out after 0.5s" in done.stderr


def test_escape_sequences_never_reach_the_terminal(site: str) -> None:
    done = browse("--allow-local", "open", f"{site}/escapes.html")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "Red alert text." in done.stdout


def test_bad_usage_is_reported() -> None:
    done = browse("open")
    assert done.returncode == 2
    assert "URL" in done.stderr


def test_output_cut_short_by_a_pipe_is_not_an_error(site: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "EXA_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "gptoss_chat", "browse", "--allow-local"]
    command += ["open", f"{site}/huge.html", "--num-lines", "5000"]  # > a pipe buffer
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # like `| head -1`
        errors = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0
    assert first.startswith(b"[0] ")
    assert "Traceback" not in errors
