"""Untrusted web content meets the terminal and the network here.

Two guards:

- `strip_terminal_controls` removes escape and control sequences from page text, so a page cannot
  move the cursor, retitle the terminal, hide text or plant an OSC 52 clipboard write when its
  text reaches the screen (the model's tool message is also shown in the UI).
- `UrlGuard` refuses URLs the model must not make us fetch (SSRF): schemes other than http(s),
  and hosts that resolve to loopback, private, link-local or otherwise non-public addresses. The
  check runs on the resolved addresses, and `GuardedNetworkBackend` connects to exactly the
  address it checked, so a name that resolves differently on the second lookup (DNS rebinding)
  cannot slip through.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""host, port -> the IP addresses a connection may go to."""

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
ANY_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)
"""For URLs fetched by someone else (Exa): only the scheme and host syntax are checked."""

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings (ESC P/X/^/_ ... ST),
# then any other two-byte escape. The 8-bit C1 forms (0x9b CSI, 0x9d OSC, ...) are matched too.
_ESCAPE_SEQUENCE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]                 # CSI: cursor moves, colours, erase
    | (?:\x1b\]|\x9d).*?(?:\x07|\x1b\\|\x9c|$)        # OSC: titles, hyperlinks, clipboard
    | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f]).*?(?:\x1b\\|\x9c|$)
    | \x1b[ -/]*[0-~]?                                # other escapes (and a lone ESC)
    """,
    re.VERBOSE | re.DOTALL,
)
# C0 controls except tab and newline, DEL, the remaining C1 controls, and the Unicode
# bidirectional overrides/isolates that can make displayed text differ from what it is.
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_terminal_controls(text: str) -> str:
    """`text` without terminal escape sequences and control characters; newlines and tabs stay.

    Carriage returns become newlines so that `"secret\\rcover"` cannot overwrite itself.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _CONTROL_CHARACTER.sub("", text)


class UrlRefused(Exception):
    """The URL may not be fetched; the text says why (it goes back to the model)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the order the system gives them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class UrlGuard:
    """Which URLs and addresses the browser may reach.

    By default only public (globally routable) addresses over http and https. `allowed_networks`
    opens specific non-public ranges: tests and `--allow-local` use `LOOPBACK_NETWORKS`.
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def allowing_local(cls, resolver: Resolver = system_resolver) -> UrlGuard:
        return cls(allowed_networks=LOOPBACK_NETWORKS, resolver=resolver)

    def check_url(self, url: str) -> str:
        """The URL if its scheme and host are acceptable (no DNS lookup yet), else UrlRefused."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise UrlRefused(f"malformed URL {url!r}: {exc}") from exc
        if parts.scheme.lower() not in ("http", "https"):
            shown = parts.scheme or "(none)"
            raise UrlRefused(f"only http and https URLs can be opened, not {shown}: {url!r}")
        if not parts.hostname:
            raise UrlRefused(f"URL has no host: {url!r}")
        literal = _parse_ip(parts.hostname)
        if literal is not None:
            self.check_address(literal)
        return url

    def check_address(self, address: str | IPAddress) -> IPAddress:
        """The address if it may be connected to, else UrlRefused."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(ip in network for network in self.allowed_networks):
            return ip
        if not ip.is_global or ip.is_multicast:
            raise UrlRefused(
                f"refusing to connect to non-public address {ip} "
                "(loopback, private and link-local addresses are blocked)"
            )
        return ip

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """All addresses of `host`, each checked; refuses if any of them is blocked."""
        literal = _parse_ip(host)
        if literal is not None:
            return [self.check_address(literal)]
        addresses = list(self.resolver(host, port))
        if not addresses:
            raise UrlRefused(f"host {host!r} has no addresses")
        return [self.check_address(address) for address in addresses]


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedNetworkBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, but every TCP connection goes to an address the guard passed.

    httpx resolves names inside `socket.create_connection`; resolving here first and connecting
    to the vetted address closes the gap between the check and the connection. TLS still uses the
    original host name (httpcore passes it to `start_tls` separately).
    """

    def __init__(self, guard: UrlGuard) -> None:
        self._guard = guard
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.resolve(host, port)
        except UrlRefused as exc:
            # httpx reports ConnectError; the message keeps the reason for the model.
            raise httpcore.ConnectError(str(exc)) from exc
        last_error: Exception | None = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from the browser")

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)
