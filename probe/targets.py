"""Ad-hoc targets given as URLs (``tls://host:443``, ``udp://host:5831``, ``wss://host/path``...)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from probe.errors import UsageError
from probe.model import CheckSpec, Protocol, Target


class TargetError(UsageError, ValueError):
    """A target or host name the user gave is malformed; str() is one line for stderr."""


# scheme -> (protocol, default port, tls), from the protocols' own schemes.
_SCHEMES: dict[str, tuple[Protocol, int | None, bool]] = {
    scheme: (protocol, port, tls) for protocol in Protocol for scheme, (port, tls) in protocol.schemes.items()
}

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def validate_host(host: str) -> str:
    """Return the host normalised (lower case, no trailing dot); raise TargetError if it is no host name."""
    bare = host.strip("[]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    name = host.rstrip(".").lower()
    try:
        # IDNA: users may paste internationalised names; probes use the ASCII form.
        name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise TargetError(f"invalid host name {host!r}: {exc}") from None
    if not name or len(name) > 253:
        raise TargetError(f"invalid host name {host!r}: must be 1 to 253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise TargetError(f"invalid host name {host!r}: label {label!r} must be 1-63 letters, digits, '-' or '_'")
    return name


# http and websocket checks with and without TLS are different targets: their ids say the URL scheme.
_SCHEME_OF: dict[tuple[Protocol, bool], str] = {
    (Protocol.HTTP, True): "https",
    (Protocol.HTTP, False): "http",
    (Protocol.WEBSOCKET, True): "wss",
    (Protocol.WEBSOCKET, False): "ws",
}


def check_id(protocol: Protocol, host: str, port: int | None, *, tls: bool = True, path: str | None = None) -> str:
    """A check's id: ``<scheme>:<host>[:<port>][<path>]``, one per distinct target.

    The scheme is the protocol's, except that http and websocket say whether they use TLS (``https``,
    ``http``, ``wss``, ``ws``): the same host and port asked with and without TLS are two targets. A
    path other than ``/`` is part of the target too (``https:example.org:443/v2/``).
    """
    scheme = _SCHEME_OF.get((protocol, tls), protocol.value)
    shown = f"[{host}]" if ":" in host else host
    out = f"{scheme}:{shown}" if port is None else f"{scheme}:{shown}:{port}"
    return out + path if path and path != "/" else out


def parse_target(text: str) -> CheckSpec:
    if "://" not in text:
        raise TargetError(f"target {text!r}: expected scheme://host[:port][/path], e.g. tls://example.org:443")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        known = ", ".join(sorted(_SCHEMES))
        raise TargetError(f"target {text!r}: unknown scheme {scheme!r} (known: {known})")
    protocol, default_port, tls = _SCHEMES[scheme]
    if not parts.hostname:
        raise TargetError(f"target {text!r}: no host")
    host = validate_host(parts.hostname)
    try:
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"target {text!r}: {exc}") from None
    if protocol is Protocol.DNS:
        if port is not None:
            raise TargetError(f"target {text!r}: dns:// takes a name only; use --dns-server for the server")
    else:
        port = port if port is not None else default_port
        if port is None:
            raise TargetError(f"target {text!r}: {scheme}:// needs a port")
        if not 0 < port < 65536:
            raise TargetError(f"target {text!r}: port {port} out of range")
    path = parts.path or ("/" if protocol in (Protocol.WEBSOCKET, Protocol.HTTP) else None)
    if parts.query and path is not None:
        path = f"{path}?{parts.query}"
    return CheckSpec(
        id=check_id(protocol, host, port, tls=tls, path=path),
        target=Target(host=host, port=port, protocol=protocol, path=path),
        tls=tls,
    )
