from __future__ import annotations

import pytest

from gptoss_chat.tools.browser.backends import BackendError, HttpFetcher
from gptoss_chat.tools.browser.safety import UrlGuard, UrlRefused, strip_terminal_controls
from tests.tools.browser.conftest import TEST_LIMITS


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("red \x1b[31malert\x1b[0m!", "red alert!"),
        ("\x1b]0;new title\x07after", "after"),
        ("\x1b]52;c;ZWNobyBwd25lZA==\x1b\\copied", "copied"),  # OSC 52 clipboard write
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink
        ("\x1bP1$tqueried\x1b\\ok", "ok"),  # DCS string
        ("\x9b2Jcleared", "cleared"),  # 8-bit CSI
        ("\x1b[2J\x1b[Hhome", "home"),
        ("secret\rcover", "secret\ncover"),  # carriage return cannot overwrite
        ("a\x00b\x07c\x08d\x7fe", "abcde"),
        ("bidi \u202eevil\u202c", "bidi evil"),
        ("keep\ttabs\nand lines, ünïcödé 🌊 【】", "keep\ttabs\nand lines, ünïcödé 🌊 【】"),
        ("lone escape at end \x1b", "lone escape at end "),
    ],
)
def test_strip_terminal_controls(raw: str, clean: str) -> None:
    assert strip_terminal_controls(raw) == clean


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/file",
        "gopher://example.org/",
        "javascript:alert(1)",
        "http:///no-host",
        "http://example.org:99999/",
        "http://127.0.0.1/",
        "http://127.8.9.10:8080/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://224.0.0.1/",
    ],
)
def test_guard_refuses_non_public_and_non_http(url: str) -> None:
    with pytest.raises(UrlRefused):
        UrlGuard().check_url(url)


def test_guard_accepts_public_addresses_without_connecting() -> None:
    guard = UrlGuard()
    assert guard.check_url("https://93.184.215.14/page") == "https://93.184.215.14/page"
    assert [str(ip) for ip in guard.resolve("2606:4700::1111", 443)] == ["2606:4700::1111"]


def test_guard_checks_resolved_addresses() -> None:
    records = {
        "public.test": ["93.184.215.14"],
        "rebind.test": ["10.1.2.3"],
        "mixed.test": ["93.184.215.14", "127.0.0.1"],
        "metadata.test": ["169.254.169.254"],
    }
    guard = UrlGuard(resolver=lambda host, port: records[host])
    assert [str(ip) for ip in guard.resolve("public.test", 80)] == ["93.184.215.14"]
    for host in ("rebind.test", "mixed.test", "metadata.test"):
        with pytest.raises(UrlRefused, match="non-public address"):
            guard.resolve(host, 80)


def test_localhost_name_is_refused_after_dns() -> None:
    # The name looks harmless; its address is what counts.
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.1|::1"):
        UrlGuard().resolve("localhost", 80)


def test_allowing_local_opens_loopback_only() -> None:
    guard = UrlGuard.allowing_local()
    assert str(guard.check_address("127.0.0.1")) == "127.0.0.1"
    assert str(guard.check_address("::1")) == "::1"
    for address in ("10.0.0.1", "192.168.0.1", "169.254.169.254"):
        with pytest.raises(UrlRefused):
            guard.check_address(address)
    with pytest.raises(UrlRefused):
        guard.check_url("file:///etc/passwd")


def test_fetcher_refuses_loopback_by_default(site: str) -> None:
    fetcher = HttpFetcher(UrlGuard(), TEST_LIMITS)
    with pytest.raises(BackendError, match=r"non-public address 127\.0\.0\.1"):
        fetcher.fetch(f"{site}/article.html")
    fetcher.close()


def test_fetcher_refuses_a_name_resolving_to_loopback(site: str) -> None:
    port = site.rsplit(":", 1)[1]
    guard = UrlGuard(resolver=lambda host, port: ["127.0.0.1"])
    fetcher = HttpFetcher(guard, TEST_LIMITS)
    with pytest.raises(BackendError, match="non-public address"):
        fetcher.fetch(f"http://innocent.test:{port}/article.html")
    fetcher.close()


def test_fetcher_connects_to_the_address_it_checked(site: str) -> None:
    # "pages.test" exists only in this resolver: the page can load only if the connection
    # goes to the address the guard resolved and vetted, not to a second lookup.
    port = site.rsplit(":", 1)[1]
    guard = UrlGuard.allowing_local(resolver=lambda host, port: ["127.0.0.1"])
    fetcher = HttpFetcher(guard, TEST_LIMITS)
    page = fetcher.fetch(f"http://pages.test:{port}/article.html")
    assert page.title == "Harmony Tides — Coastal Notes"
    fetcher.close()


@pytest.mark.parametrize("path", ["/redirect-private", "/redirect-file"])
def test_redirects_are_guarded_too(fetcher: HttpFetcher, site: str, path: str) -> None:
    with pytest.raises(BackendError, match=r"non-public|only http and https"):
        fetcher.fetch(site + path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1", "malformed URL"),
        ("https://", "URL has no host"),
        ("http://a.test:99999/", "malformed URL"),
        ("http://xn--zz.test/", "invalid URL"),
        ("http://a.test/\x00", "invalid URL"),
        ("http://public.test/", "cannot connect: refusing to connect to non-public address"),
    ],
)
def test_bad_urls_are_clear_errors_not_crashes(url: str, message: str) -> None:
    # Every name "resolves" to a private address: nothing here may open a connection.
    fetcher = HttpFetcher(UrlGuard(resolver=lambda host, port: ["10.9.9.9"]), TEST_LIMITS)
    with pytest.raises(BackendError, match=message):
        fetcher.fetch(url)
    fetcher.close()
