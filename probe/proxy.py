"""Which HTTP proxy applies to a destination, and opening a CONNECT tunnel through it.

Proxy selection follows curl, the reference most proxy setups are written against:

* ``--proxy`` wins; otherwise, when the environment is trusted, ``https_proxy`` then
  ``HTTPS_PROXY`` for TLS, ``http_proxy`` only (never ``HTTP_PROXY``: under CGI a client's
  ``Proxy:`` header becomes that variable) for plain HTTP, then ``all_proxy``/``ALL_PROXY``.
  Empty variables count as unset, as in curl.
* ``no_proxy`` (then ``NO_PROXY``) applies to ``--proxy`` too, as curl documents.
* A proxy URL without a scheme is ``http://``; without a port, 80 for http (requests and aiohttp
  do this; curl would use 1080). Only ``http://`` proxies can be tunnelled through; any other
  scheme is still returned, so the probe fails with a clear detail instead of going direct.

NO_PROXY semantics (``no_proxy_matches``): curl's ``Curl_check_noproxy`` (lib/noproxy.c), plus
the bypasses requests, urllib or Go make where curl would not:

* entries are separated by commas; case is ignored. Blanks separate too (curl instead stops
  reading at a blank not followed by a comma);
* ``*`` bypasses the proxy for every host (curl: only when it is the whole value; urllib and
  Go: anywhere in the list);
* a name entry matches the host itself and any subdomain: ``example.com``, ``.example.com`` and
  ``*.example.com`` all match ``example.com`` and ``a.example.com``, never ``notexample.com``
  (curl; requests' bare ``endswith`` would match it). Trailing dots on either side are ignored;
* IP and CIDR entries (``10.0.0.5``, ``10.0.0.0/8``, ``::1``, ``fd00::/8``, brackets allowed)
  match IP-literal hosts only: no name is ever resolved to decide (curl and requests alike);
* ``entry:port`` (``[v6]:port`` for IPv6) matches only that destination port (requests, Go;
  curl never matches such an entry).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from probe import __version__
from probe.context import ProbeContext, ProbeSettings
from probe.errors import UsageError
from probe.model import ProxyFacts
from probe.reasons import Reason
from probe.redact import redact_url
from probe.sanitize import printable
from probe.tcp import ConnectFailed, connect_tcp, endpoint
from probe.timing import within

if TYPE_CHECKING:
    from probe.http import HttpHead

_DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}


@dataclass
class ProxyChoice:
    url: str
    host: str
    port: int
    source: str
    username: str | None = None
    password: str | None = None
    scheme: str = "http"
    # Why this proxy cannot be used (bad URL, unsupported scheme), as a sentence; open_tunnel reports it.
    problem: str | None = None
    # The URL cannot be parsed at all (no host, bad port, unclosed bracket): bad input, not a network fact.
    malformed: bool = False

    @property
    def redacted_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = ""
        if self.username is not None:
            user = quote(self.username, safe="")
            auth = f"{user}:****@" if self.password is not None else f"{user}@"
        return f"{self.scheme}://{auth}{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return endpoint(self.host, self.port)


def parse_proxy_url(url: str, source: str) -> ProxyChoice:
    """Parse a proxy URL the way curl reads ``-x``; an unusable one carries a ``problem``."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    scheme = text.split("://", 1)[0].lower()
    try:
        # urlsplit itself raises for an unclosed IPv6 bracket ("http://[::1"), .port for a bad port.
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        return ProxyChoice(
            url, "", 0, source, scheme=scheme, problem=f"Invalid proxy URL from {source}: {exc}.", malformed=True
        )
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    choice = ProxyChoice(
        url=url,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS.get(scheme, 80),
        source=source,
        username=username,
        password=password,
        scheme=scheme,
    )
    if not host:
        choice.problem = f"Invalid proxy URL from {source}: no host name."
        choice.malformed = True
    elif (bad_host := _host_problem(host)) is not None:
        choice.problem = f"Invalid proxy URL from {source}: {bad_host}."
        choice.malformed = True
    elif port == 0:
        choice.problem = f"Invalid proxy URL from {source}: port 0."
        choice.malformed = True
    elif scheme == "https":
        choice.problem = (
            f"Unsupported proxy scheme https (from {source}): TLS to the proxy itself is not supported; most "
            "proxies (squid among them) take http:// for HTTPS traffic too."
        )
    elif scheme != "http":
        choice.problem = (
            f"Unsupported proxy scheme {scheme} (from {source}): only http:// proxies can carry a CONNECT tunnel."
        )
    return choice


def _host_problem(host: str) -> str | None:
    """Why ``host`` is no host name or address (a space, an empty label), or None."""
    from probe.targets import TargetError, validate_host

    try:
        validate_host(host)
    except TargetError as exc:
        return str(exc)
    return None


# Every variable choose_proxy may read (NO_PROXY aside).
PROXY_ENV_VARS = ("https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY")


def check_proxy_settings(settings: ProbeSettings) -> None:
    """Refuse, before probing, a proxy setting that is bad input. Raises UsageError (one line).

    A URL that cannot be parsed is bad input wherever it comes from. ``--proxy`` is also refused
    when it names a scheme that cannot carry a CONNECT tunnel, or has neither a scheme nor a port
    (``--proxy notaurl``: curl would dial port 1080, requests port 80); an environment variable
    with those problems may be meant for other tools, so its probes fail with the reason instead.
    """
    given: list[tuple[str, str]] = [("--proxy", settings.proxy)] if settings.proxy else []
    if settings.trust_env:
        given += [(name, value) for name in PROXY_ENV_VARS if (value := settings.env.get(name))]
    for source, value in given:
        choice = parse_proxy_url(value, source)
        explicit = source == "--proxy"
        problem = choice.problem if choice.malformed or explicit else None
        if explicit and problem is None and "://" not in value and urlsplit("http://" + value.strip()).port is None:
            problem = "expected http://host:port"
        if problem is not None:
            raise UsageError(f"{source} '{printable(redact_url(value), 200)}': {problem}")


def _first_set(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name)
        if value:
            return name, value
    return None


def choose_proxy(settings: ProbeSettings, host: str, port: int, *, tls: bool) -> ProxyChoice | None:
    """The proxy a connection to host:port goes through, or None for a direct connection."""
    env: Mapping[str, str] = settings.env if settings.trust_env else {}
    no_proxy = _first_set(env, ("no_proxy", "NO_PROXY"))
    if no_proxy is not None and no_proxy_matches(no_proxy[1], host, port):
        return None
    if settings.proxy:
        return parse_proxy_url(settings.proxy, "--proxy")
    names = ("https_proxy", "HTTPS_PROXY") if tls else ("http_proxy",)
    found = _first_set(env, (*names, "all_proxy", "ALL_PROXY"))
    if found is None:
        return None
    return parse_proxy_url(found[1], found[0])


_PORT_SUFFIX = re.compile(r"^(.*):(\d+)$")


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``name``/``ip``/``cidr`` plus an optional port; IPv6 takes a port only in brackets."""
    if entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            return entry, None
        inner, rest = entry[1:close], entry[close + 1 :]
        if rest.startswith(":") and rest[1:].isdigit():
            return inner, int(rest[1:])
        # "[fd00::]/8": keep the prefix length with the address.
        return inner + rest, None
    if entry.count(":") == 1:
        m = _PORT_SUFFIX.match(entry)
        if m:
            return m.group(1), int(m.group(2))
    return entry, None


def no_proxy_matches(no_proxy: str, host: str, port: int) -> bool:
    """Whether a NO_PROXY value sends host:port direct (semantics in the module docstring)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        ip = None
    for raw in re.split(r"[\s,]+", no_proxy.strip()):
        if not raw:
            continue
        if raw == "*":
            return True
        entry, entry_port = _split_entry(raw.lower())
        if entry_port is not None and entry_port != port:
            continue
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
            continue
        entry = entry.rstrip(".")
        if entry.startswith("*."):
            entry = entry[2:]
        elif entry.startswith("."):
            entry = entry[1:]
        if entry and (name == entry or name.endswith("." + entry)):
            return True
    return False


class ProxyFailed(Exception):
    def __init__(self, reason: Reason, detail: str, facts: ProxyFacts, attempts: list[str]) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.facts = facts
        self.attempts = attempts


_UNREACHED = {
    Reason.TCP_REFUSED: "refused the connection",
    Reason.TCP_TIMEOUT: "did not answer the TCP connection attempt in time",
    Reason.TCP_UNREACHABLE: "is unreachable (no route)",
    Reason.TCP_PROHIBITED: "is forbidden by local policy",
    Reason.TCP_RESET: "reset the connection",
}


async def connect_proxy(
    ctx: ProbeContext, choice: ProxyChoice, deadline: float, facts: ProxyFacts
) -> tuple[socket.socket, list[str]]:
    """A TCP connection to the proxy itself; every failure is ``proxy_refused``."""
    if choice.problem is not None:
        raise ProxyFailed(Reason.PROXY_REFUSED, choice.problem, facts, [])
    try:
        resolution = await within(ctx.resolver.resolve(choice.host), deadline)
    except TimeoutError:
        detail = f"Resolving the proxy name {choice.host} did not finish in time."
        raise ProxyFailed(Reason.PROXY_REFUSED, detail, facts, []) from None
    if not resolution.ok:
        detail = f"The proxy name {choice.host} did not resolve ({resolution.reason.value}): {resolution.detail}"
        raise ProxyFailed(Reason.PROXY_REFUSED, detail, facts, [])
    try:
        connected = await connect_tcp(resolution.addresses, choice.port, deadline)
    except ConnectFailed as exc:
        what = _UNREACHED.get(exc.reason, f"could not be reached ({exc.reason.value})")
        detail = f"Proxy {choice.endpoint} {what}: {exc.detail}"
        raise ProxyFailed(Reason.PROXY_REFUSED, detail, facts, exc.attempts) from None
    return connected.sock, connected.attempts


def connect_request(choice: ProxyChoice, host: str, port: int) -> bytes:
    authority = endpoint(host.strip("[]"), port)
    lines = [
        f"CONNECT {authority} HTTP/1.1",
        f"Host: {authority}",
        f"User-Agent: amlprobe/{__version__}",
    ]
    auth = proxy_authorization(choice)
    if auth is not None:
        lines.append(f"Proxy-Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def proxy_authorization(choice: ProxyChoice) -> str | None:
    if choice.username is None:
        return None
    token = f"{choice.username}:{choice.password or ''}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


def _readable(sock: socket.socket) -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    fut.add_done_callback(lambda _: loop.remove_reader(fd))
    return fut


async def read_head_exact(sock: socket.socket, deadline: float, limit: int | None = None) -> bytes:
    """Read a response head (at most ``limit`` bytes, default HEAD_LIMIT) from a raw socket without
    consuming one byte past it.

    The socket is handed on for TLS (or another protocol) afterwards, so peeking then taking
    exactly what belongs to the head keeps whatever the peer sends next in the kernel buffer.
    """
    # probe.http (and through it TLS and cryptography) is loaded when a tunnel is opened, not when
    # the command line checks the proxy settings.
    from probe.http import HEAD_LIMIT, BadHttpResponse, find_head_end

    limit = HEAD_LIMIT if limit is None else limit
    head = bytearray()
    while True:
        await within(_readable(sock), deadline)
        try:
            chunk = sock.recv(limit, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        if not chunk:
            raise ConnectionResetError("closed by the peer")
        keep = min(3, len(head))
        end = find_head_end(bytes(head[len(head) - keep :]) + chunk)
        if end is not None:
            head += sock.recv(end - keep)
            return bytes(head)
        if len(head) + len(chunk) >= limit:
            raise BadHttpResponse(f"response head larger than {limit} bytes")
        head += sock.recv(len(chunk))


def _auth_schemes(head: HttpHead) -> str:
    offered = [v.split(None, 1)[0] for v in head.get_all("proxy-authenticate") if v.strip()]
    return ", ".join(dict.fromkeys(offered)) or "nothing"


def _answered_by(head: HttpHead) -> str:
    parts = []
    server, via = head.get("server"), head.get("via")
    if server:
        parts.append(f"Server: {server}")
    if via:
        parts.append(f"Via: {via}")
    return f" ({'; '.join(parts)})" if parts else ""


async def open_tunnel(
    ctx: ProbeContext, choice: ProxyChoice, host: str, port: int, deadline: float
) -> tuple[socket.socket, ProxyFacts]:
    """Return a socket tunnelled by ``CONNECT host:port`` through the proxy, ready for TLS.

    Raises ProxyFailed with a proxy_* reason; the socket is closed on every failure.
    """
    from probe.http import BadHttpResponse, parse_head

    facts = ProxyFacts(url=choice.redacted_url, source=choice.source)
    sock, attempts = await connect_proxy(ctx, choice, deadline, facts)
    target = endpoint(host.strip("[]"), port)
    where = f"Proxy {choice.endpoint} (from {choice.source})"
    try:
        loop = asyncio.get_running_loop()
        await within(loop.sock_sendall(sock, connect_request(choice, host, port)), deadline)
        head = parse_head(await read_head_exact(sock, deadline))
    except TimeoutError:
        sock.close()
        detail = f"{where} did not answer CONNECT {target} in time."
        raise ProxyFailed(Reason.PROXY_TIMEOUT, detail, facts, attempts) from None
    except BadHttpResponse as exc:
        sock.close()
        detail = f"{where} answered CONNECT {target} with something that is not HTTP: {exc}."
        raise ProxyFailed(Reason.PROXY_CONNECT_REJECTED, detail, facts, attempts) from None
    except OSError as exc:
        sock.close()
        detail = f"{where} closed the connection during CONNECT {target} ({exc.strerror or exc})."
        raise ProxyFailed(Reason.PROXY_RESET, detail, facts, attempts) from None
    except BaseException:
        sock.close()
        raise
    facts.connect_status = head.status
    facts.server = head.get("server")
    facts.via = head.get("via")
    if 200 <= head.status < 300:
        return sock, facts
    sock.close()
    status = f"{head.status} {head.reason}".strip()
    if head.status == 407:
        if choice.username is None:
            detail = (
                f"{where} demands authentication for CONNECT {target} ({status}); no credentials are "
                f"configured, and it offers: {_auth_schemes(head)}."
            )
        else:
            detail = (
                f"{where} rejected the credentials of user '{choice.username}' for CONNECT {target} "
                f"({status}); it offers: {_auth_schemes(head)}."
            )
        raise ProxyFailed(Reason.PROXY_AUTH_REQUIRED, detail, facts, attempts)
    detail = f"{where} refused CONNECT {target} with {status}{_answered_by(head)}."
    raise ProxyFailed(Reason.PROXY_CONNECT_REJECTED, detail, facts, attempts)
