from __future__ import annotations

from collections.abc import Iterator

import pytest

from gptoss_chat.tools.browser.backends import FetchLimits, HttpFetcher, KeylessBackend
from gptoss_chat.tools.browser.safety import UrlGuard
from tests.tools.browser.servers import ExaApi, PageHandler, exa_handler, serve

TEST_LIMITS = FetchLimits(timeout_s=1.0, max_bytes=200_000)


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    """Base URL of the fixture pages server."""
    with serve(PageHandler) as base:
        yield base


@pytest.fixture(scope="session")
def exa_api(site: str) -> Iterator[tuple[str, ExaApi]]:
    """(base URL, recorded requests) of a local server speaking Exa's search/contents API."""
    api = ExaApi(page_base=site)
    with serve(exa_handler(api)) as base:
        yield base, api


@pytest.fixture
def fetcher() -> Iterator[HttpFetcher]:
    fetcher = HttpFetcher(UrlGuard.allowing_local(), TEST_LIMITS)
    yield fetcher
    fetcher.close()


@pytest.fixture
def keyless(fetcher: HttpFetcher) -> KeylessBackend:
    return KeylessBackend(fetcher)
