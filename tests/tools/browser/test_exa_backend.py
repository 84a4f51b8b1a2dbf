"""The real exa-py client against a local server speaking Exa's /search and /contents API."""

from __future__ import annotations

import pytest

from gptoss_chat.tools.browser.backends import BackendError, ExaBackend, make_backend
from tests.tools.browser.servers import EXA_KEY, ExaApi


@pytest.fixture
def exa(exa_api: tuple[str, ExaApi]) -> ExaBackend:
    base, api = exa_api
    api.requests.clear()
    return ExaBackend(EXA_KEY, base_url=base, timeout_s=5)


def test_search_request_and_results_page(exa: ExaBackend, exa_api: tuple[str, ExaApi]) -> None:
    _, api = exa_api
    page = exa.search("tide tables", 2)
    path, headers, body = api.requests[-1]
    assert path == "/search"
    assert headers["x-api-key"] == EXA_KEY
    assert body["query"] == "tide tables"
    assert body["numResults"] == 2
    assert body["contents"] == {"highlights": True}
    domain = api.page_base.removeprefix("http://")
    assert page.kind == "search" and page.title == "tide tables"
    assert page.lines == [
        "# Search Results",
        "",
        f"  * 【0†Tides of the Northern Coast†{domain}】 Spring tide reaches 4.2 m.",
        f"  * 【1†tidectl reference†{domain}】 Run tidectl --port oban.",
    ]
    assert page.links == {0: f"{api.page_base}/article.html", 1: f"{api.page_base}/docs.html"}


def test_fetch_asks_for_html_and_builds_the_page(
    exa: ExaBackend, exa_api: tuple[str, ExaApi]
) -> None:
    _, api = exa_api
    url = f"{api.page_base}/article.html"
    page = exa.fetch(url)
    path, _, body = api.requests[-1]
    assert path == "/contents"
    assert body["urls"] == [url]
    assert body["text"] == {"includeHtmlTags": True}
    assert page.url == url
    assert page.title == "Tides of the Northern Coast"
    assert page.links[1] == f"{api.page_base}/about.html"
    assert "  * Waterproof boots" in page.lines


def test_fetch_reports_exa_crawl_errors(exa: ExaBackend, exa_api: tuple[str, ExaApi]) -> None:
    _, api = exa_api
    with pytest.raises(BackendError, match=r"Exa could not fetch .* \(CRAWL_NOT_FOUND, HTTP 404\)"):
        exa.fetch(f"{api.page_base}/nowhere.html")


def test_fetch_refuses_file_urls_before_asking_exa(
    exa: ExaBackend, exa_api: tuple[str, ExaApi]
) -> None:
    _, api = exa_api
    with pytest.raises(BackendError, match="only http and https"):
        exa.fetch("file:///etc/passwd")
    assert api.requests == []


def test_wrong_key_is_reported(exa_api: tuple[str, ExaApi]) -> None:
    base, _ = exa_api
    backend = ExaBackend("wrong-key", base_url=base, timeout_s=5)
    with pytest.raises(BackendError, match=r"Exa error while search for `q`: .*401"):
        backend.search("q", 3)


def test_unreachable_exa_is_reported() -> None:
    backend = ExaBackend(EXA_KEY, base_url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(BackendError, match="Exa error while"):
        backend.search("q", 3)


def test_make_backend_choices(exa_api: tuple[str, ExaApi]) -> None:
    base, _ = exa_api
    assert isinstance(make_backend("auto", exa_api_key=EXA_KEY, exa_base_url=base), ExaBackend)
    assert type(make_backend("auto")).__name__ == "KeylessBackend"
    assert type(make_backend("keyless", exa_api_key=EXA_KEY)).__name__ == "KeylessBackend"
    with pytest.raises(ValueError, match="EXA_API_KEY"):
        make_backend("exa")
    with pytest.raises(ValueError, match="unknown browser backend"):
        make_backend("bing")
