"""The stable vocabulary of check outcomes, and the one place where exceptions become reasons.

A reason names the layer that failed and what it saw there. Codes are snake_case and never
renamed: monitoring, the diagnosis rules and users' scripts match on them.

    ok
    dns_*        the name did not resolve (or resolved against expectation)
    tcp_*        the TCP connection was not established or was torn down
    tls_*        TCP worked; the TLS handshake or certificate verification did not
    ws_*         TLS worked; the websocket upgrade did not
    http_*       an HTTP exchange answered unexpectedly
    smb_*        TCP 445 worked; SMB2 NEGOTIATE did not
    udp_*        the nmap port state of a UDP probe
    proxy_*      the HTTP proxy in the path refused or rejected the tunnel
    run-level    skipped, interrupted, deadline, internal errors
"""

from __future__ import annotations

import errno
from enum import Enum


class Reason(str, Enum):
    OK = "ok"

    DNS_NXDOMAIN = "dns_nxdomain"
    DNS_SERVFAIL = "dns_servfail"
    DNS_REFUSED = "dns_refused"
    DNS_TIMEOUT = "dns_timeout"
    DNS_NO_ANSWER = "dns_no_answer"
    DNS_NO_SERVERS = "dns_no_servers"
    DNS_ERROR = "dns_error"
    DNS_PUBLIC_ADDRESS = "dns_public_address"
    DNS_PRIVATE_ADDRESS = "dns_private_address"
    DNS_MISSING_PRIVATELINK_CNAME = "dns_missing_privatelink_cname"
    DNS_RESOLVER_MISMATCH = "dns_resolver_mismatch"
    DNS_HOSTS_OVERRIDE = "dns_hosts_override"

    TCP_REFUSED = "tcp_refused"
    TCP_TIMEOUT = "tcp_timeout"
    TCP_UNREACHABLE = "tcp_unreachable"
    TCP_PROHIBITED = "tcp_prohibited"
    TCP_RESET = "tcp_reset"
    TCP_ERROR = "tcp_error"

    TLS_UNTRUSTED = "tls_untrusted"
    TLS_HOSTNAME_MISMATCH = "tls_hostname_mismatch"
    TLS_EXPIRED = "tls_expired"
    TLS_TIMEOUT = "tls_timeout"
    TLS_RESET = "tls_reset"
    TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
    TLS_UNEXPECTED_ISSUER = "tls_unexpected_issuer"

    WS_UPGRADE_REJECTED = "ws_upgrade_rejected"
    WS_RESET = "ws_reset"
    WS_TIMEOUT = "ws_timeout"
    WS_AUTH_REQUIRED = "ws_auth_required"
    WS_INCONCLUSIVE = "ws_inconclusive"
    WS_INTERCEPTED = "ws_intercepted"
    WS_PROXY_AUTH_REQUIRED = "ws_proxy_auth_required"
    WS_UPGRADE_IGNORED = "ws_upgrade_ignored"

    HTTP_TIMEOUT = "http_timeout"
    HTTP_BAD_RESPONSE = "http_bad_response"
    HTTP_AUTH_REQUIRED = "http_auth_required"
    HTTP_SERVICE_ANSWERED = "http_service_answered"
    HTTP_NETWORK_DENIED = "http_network_denied"
    HTTP_PUBLIC_ACCESS_DISABLED = "http_public_access_disabled"
    HTTP_INTERCEPTED = "http_intercepted"
    HTTP_INCONCLUSIVE = "http_inconclusive"

    SMB_NOT_SMB = "smb_not_smb"
    SMB_RESET = "smb_reset"
    SMB_TIMEOUT = "smb_timeout"
    SMB_NO_COMMON_DIALECT = "smb_no_common_dialect"
    SMB_NO_COMMON_CIPHER = "smb_no_common_cipher"

    UDP_OPEN = "udp_open"
    UDP_CLOSED = "udp_closed"
    UDP_FILTERED = "udp_filtered"
    UDP_OPEN_FILTERED = "udp_open_filtered"

    PROXY_AUTH_REQUIRED = "proxy_auth_required"
    PROXY_REFUSED = "proxy_refused"
    PROXY_CONNECT_REJECTED = "proxy_connect_rejected"
    PROXY_TIMEOUT = "proxy_timeout"
    PROXY_RESET = "proxy_reset"

    SKIPPED_MISSING_INPUT = "skipped_missing_input"
    SKIPPED_NOT_APPLICABLE = "skipped_not_applicable"
    INTERRUPTED = "interrupted"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INTERNAL_ERROR = "internal_error"


REASON_DESCRIPTIONS: dict[Reason, str] = {
    Reason.OK: "The check passed.",
    Reason.DNS_NXDOMAIN: "The resolver answered that the name does not exist (NXDOMAIN).",
    Reason.DNS_SERVFAIL: "The resolver failed to answer (SERVFAIL): often a broken forwarder.",
    Reason.DNS_REFUSED: "The resolver refused the query (REFUSED).",
    Reason.DNS_TIMEOUT: "No resolver answered within the timeout.",
    Reason.DNS_NO_ANSWER: "The name exists but has no A/AAAA record (NOERROR, no data).",
    Reason.DNS_NO_SERVERS: "No DNS server is configured.",
    Reason.DNS_ERROR: "The DNS exchange failed in another way (malformed answer, socket error).",
    Reason.DNS_PUBLIC_ADDRESS: "The name resolved to a public address where a private endpoint was expected.",
    Reason.DNS_PRIVATE_ADDRESS: "The name resolved to a private address where a public one was expected.",
    Reason.DNS_MISSING_PRIVATELINK_CNAME: "The answer lacks the expected privatelink CNAME.",
    Reason.DNS_RESOLVER_MISMATCH: "The configured resolver and the reference resolver disagree.",
    Reason.DNS_HOSTS_OVERRIDE: "The hosts file overrides the name.",
    Reason.TCP_REFUSED: "The peer (or a firewall acting for it) answered with a TCP reset: nothing listens.",
    Reason.TCP_TIMEOUT: "No answer to the TCP SYN: dropped silently by a firewall, NSG or route.",
    Reason.TCP_UNREACHABLE: "An ICMP unreachable or a missing route: no path to the address.",
    Reason.TCP_PROHIBITED: "Local policy forbade the connection (EACCES/EPERM).",
    Reason.TCP_RESET: "The connection was established, then reset.",
    Reason.TCP_ERROR: "Another socket error.",
    Reason.TLS_UNTRUSTED: "The certificate chain does not lead to a trusted root.",
    Reason.TLS_HOSTNAME_MISMATCH: "The certificate does not name the host.",
    Reason.TLS_EXPIRED: "The certificate has expired or is not yet valid.",
    Reason.TLS_TIMEOUT: "TCP connected but the TLS handshake did not finish in time.",
    Reason.TLS_RESET: "The connection was reset or closed during the TLS handshake.",
    Reason.TLS_HANDSHAKE_FAILED: "The TLS handshake failed (protocol or cipher disagreement, alert).",
    Reason.TLS_UNEXPECTED_ISSUER: (
        "The chain is trusted here, but its issuer is not one the host's operator uses (or is the CA seen"
        " re-signing other hosts): TLS inspection."
    ),
    Reason.WS_UPGRADE_REJECTED: (
        "The server refused the websocket upgrade with another status (404, 426, 5xx ...) and no sign of a"
        " middlebox, or answered 101 with an invalid handshake."
    ),
    Reason.WS_RESET: "The connection was reset or closed right after the websocket upgrade request was sent.",
    Reason.WS_TIMEOUT: "No answer to the websocket upgrade request in time.",
    Reason.WS_AUTH_REQUIRED: (
        "Reached, authentication required: the server answered the anonymous upgrade with 401, 403 or a redirect"
        " to another site, as it answers a plain GET. The path works; only credentials can get a 101."
    ),
    Reason.WS_INCONCLUSIVE: (
        "The answer to the upgrade neither proves the path nor shows a middlebox (e.g. a refusal only the upgrade"
        " got, with no sign of who sent it)."
    ),
    Reason.WS_INTERCEPTED: (
        "A middlebox answered the upgrade itself (a Via header, a web proxy's Server header or a block page):"
        " it never reached the service."
    ),
    Reason.WS_PROXY_AUTH_REQUIRED: "An intercepting proxy answered the websocket upgrade with 407 (proxy credentials).",
    Reason.WS_UPGRADE_IGNORED: (
        "The upgrade got a 2xx answer, as a plain GET would: the Upgrade header was removed or ignored on the way."
    ),
    Reason.HTTP_TIMEOUT: "No HTTP answer in time.",
    Reason.HTTP_BAD_RESPONSE: "The peer's HTTP answer could not be parsed.",
    Reason.HTTP_AUTH_REQUIRED: (
        "Reached, authentication required: the service answered the anonymous request with its own documented"
        " authentication challenge. The path works."
    ),
    Reason.HTTP_SERVICE_ANSWERED: (
        "The service itself answered (its own error), but not with a documented challenge or refusal: the path"
        " works; what the answer says about access is not documented."
    ),
    Reason.HTTP_NETWORK_DENIED: (
        "The service answered and refused the request because of where it came from: its firewall (network"
        " rules) does not admit this machine (for some services, or its public network access is disabled)."
    ),
    Reason.HTTP_PUBLIC_ACCESS_DISABLED: (
        "The service answered that its public network access is disabled: only its private endpoints (or trusted"
        " services) may reach it."
    ),
    Reason.HTTP_INTERCEPTED: (
        "Something in between (a proxy, a firewall's block page or its own refusal status, such as 470) answered"
        " instead of the service: the request never reached it."
    ),
    Reason.HTTP_INCONCLUSIVE: (
        "An answer without the service's marks and without a middlebox's: who sent it cannot be told."
    ),
    Reason.SMB_NOT_SMB: "TCP 445 is open but what answered does not speak SMB2/3.",
    Reason.SMB_RESET: "The connection was reset during SMB2 NEGOTIATE.",
    Reason.SMB_TIMEOUT: "TCP 445 connected but no SMB2 NEGOTIATE response came in time.",
    Reason.SMB_NO_COMMON_DIALECT: (
        "An SMB2 server answered, but supports none of the dialects offered (2.0.2 to 3.1.1)."
    ),
    Reason.SMB_NO_COMMON_CIPHER: (
        "SMB 3.1.1 negotiated, but the server has no cipher in common with what a Linux CIFS client offers"
        " (AES-128-GCM, AES-256-GCM, AES-128-CCM): no encrypted session can be set up."
    ),
    Reason.UDP_OPEN: "A datagram came back: the UDP port is open.",
    Reason.UDP_CLOSED: "ICMP port unreachable came back: the UDP port is closed (rejected).",
    Reason.UDP_FILTERED: "Another ICMP unreachable came back: the UDP port is filtered.",
    Reason.UDP_OPEN_FILTERED: "Silence: the port is open or silently filtered; this cannot be told apart from inside.",
    Reason.PROXY_AUTH_REQUIRED: "The proxy demands authentication (HTTP 407).",
    Reason.PROXY_REFUSED: "The proxy itself could not be reached.",
    Reason.PROXY_CONNECT_REJECTED: "The proxy refused to open the CONNECT tunnel (e.g. 403, 502, 503).",
    Reason.PROXY_TIMEOUT: "The proxy did not answer the CONNECT request in time.",
    Reason.PROXY_RESET: "The proxy closed the connection during CONNECT.",
    Reason.SKIPPED_MISSING_INPUT: "Not probed: an input needed to build the host name is missing.",
    Reason.SKIPPED_NOT_APPLICABLE: "Not probed: does not apply to this configuration.",
    Reason.INTERRUPTED: "Not finished: the run was interrupted (SIGINT/SIGTERM).",
    Reason.DEADLINE_EXCEEDED: "Not finished: the whole-run deadline passed.",
    Reason.INTERNAL_ERROR: "amlprobe itself failed on this check: a bug, please report it.",
}

# Errno values that mean "no path": ICMP host/net unreachable, or no route in the local table.
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
_PROHIBITED = {errno.EACCES, errno.EPERM}
_RESET = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def classify_socket_error(exc: BaseException) -> Reason:
    """Map an exception raised while connecting or talking over TCP to a ``tcp_*`` reason."""
    if isinstance(exc, (TimeoutError, ConnectionRefusedError)):
        return Reason.TCP_TIMEOUT if isinstance(exc, TimeoutError) else Reason.TCP_REFUSED
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return Reason.TCP_RESET
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno == errno.ECONNREFUSED:
            return Reason.TCP_REFUSED
        if exc.errno == errno.ETIMEDOUT:
            return Reason.TCP_TIMEOUT
        if exc.errno in _UNREACHABLE:
            return Reason.TCP_UNREACHABLE
        if exc.errno in _PROHIBITED:
            return Reason.TCP_PROHIBITED
        if exc.errno in _RESET:
            return Reason.TCP_RESET
    return Reason.TCP_ERROR


def classify_tls_error(exc: BaseException) -> Reason:
    """Map an exception raised during the TLS handshake (after TCP connected) to a ``tls_*`` reason."""
    import ssl  # here: the report model imports this module, and `plan` needs no TLS

    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        # OpenSSL X509_V_ERR_* codes.
        if code in (9, 10):  # CERT_NOT_YET_VALID, CERT_HAS_EXPIRED
            return Reason.TLS_EXPIRED
        if code == 62:  # HOSTNAME_MISMATCH
            return Reason.TLS_HOSTNAME_MISMATCH
        if code == 64:  # IP_ADDRESS_MISMATCH
            return Reason.TLS_HOSTNAME_MISMATCH
        return Reason.TLS_UNTRUSTED
    if isinstance(exc, TimeoutError):
        return Reason.TLS_TIMEOUT
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError)):
        return Reason.TLS_RESET
    if isinstance(exc, ssl.SSLError) and "EOF" in str(exc):
        return Reason.TLS_RESET
    if isinstance(exc, OSError) and exc.errno in _RESET:
        return Reason.TLS_RESET
    if isinstance(exc, ConnectionError) and not isinstance(exc, OSError):
        return Reason.TLS_RESET
    return Reason.TLS_HANDSHAKE_FAILED


# Reasons that mean "the name did not resolve" / "the TCP connection failed", whatever the protocol on top.
DNS_FAILURES = frozenset(
    {
        Reason.DNS_NXDOMAIN,
        Reason.DNS_SERVFAIL,
        Reason.DNS_REFUSED,
        Reason.DNS_TIMEOUT,
        Reason.DNS_NO_ANSWER,
        Reason.DNS_NO_SERVERS,
        Reason.DNS_ERROR,
    }
)
TCP_FAILURES = frozenset(
    {
        Reason.TCP_TIMEOUT,
        Reason.TCP_REFUSED,
        Reason.TCP_UNREACHABLE,
        Reason.TCP_PROHIBITED,
        Reason.TCP_RESET,
        Reason.TCP_ERROR,
    }
)
