"""Which HTTP proxy applies to a destination: pure selection, no I/O (the tunnel is probe.transport.tunnel).

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

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from probe.errors import UsageError
from probe.redact import redact_url
from probe.sanitize import printable
from probe.settings import ProbeSettings
from probe.transport.connect import endpoint

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
        """The URL as the report shows it, credentials hidden by probe.redact's rule (a lone user name,
        often a token, is hidden too)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = ""
        if self.username is not None:
            user = quote(self.username, safe="")
            auth = f"{user}:{quote(self.password, safe='')}@" if self.password is not None else f"{user}@"
        return redact_url(f"{self.scheme}://{auth}{host}:{self.port}")

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
    from probe.targets import TargetError, validate_host  # noqa: PLC0415 - only for a bad proxy (start-up: pydantic)

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
            # probe.redact compiles ~2 ms of patterns: the command line pays it here, not the path to the
            # first probe (probe.registry imports this module).
            from probe.redact import redact_url  # noqa: PLC0415 - lazy for start-up (measured)

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
