"""HTTPS through the guarded transport: the connection goes to the vetted address while TLS
still verifies the certificate against the host name in the URL."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_chat.tools.browser.backends import BackendError, HttpFetcher
from gptoss_chat.tools.browser.safety import UrlGuard
from tests.tools.browser.conftest import TEST_LIMITS
from tests.tools.browser.servers import PageHandler


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=secure.test"]
    command += ["-addext", "subjectAltName=DNS:secure.test"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def https_port(certificate: tuple[Path, Path]) -> Iterator[int]:
    cert, key = certificate
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def fetcher_for(certificate: tuple[Path, Path]) -> HttpFetcher:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    guard = UrlGuard.allowing_local(resolver=lambda host, port: ["127.0.0.1"])
    return HttpFetcher(guard, TEST_LIMITS, ssl_context=trust)


def test_https_page_through_the_pinned_address(
    certificate: tuple[Path, Path], https_port: int
) -> None:
    fetcher = fetcher_for(certificate)
    page = fetcher.fetch(f"https://secure.test:{https_port}/article.html")
    assert page.title == "Harmony Tides — Coastal Notes"
    assert page.links[1] == f"https://secure.test:{https_port}/about.html"
    fetcher.close()


def test_certificate_is_checked_against_the_url_host(
    certificate: tuple[Path, Path], https_port: int
) -> None:
    # Same server and address, but the certificate is not for this name: TLS must fail.
    fetcher = fetcher_for(certificate)
    with pytest.raises(BackendError, match=r"CERTIFICATE_VERIFY_FAILED|hostname"):
        fetcher.fetch(f"https://other.test:{https_port}/article.html")
    fetcher.close()
