"""The one mapping from exceptions to reason codes, used at every boundary where a socket or a TLS
handshake can fail (httpcore's ``map_exceptions``, with reasons instead of exception classes).
"""

from __future__ import annotations

import errno
import ssl

from probe.reasons import Reason

# OpenSSL X509_V_ERR_* verification codes (include/openssl/x509_vfy.h), as ssl.SSLCertVerificationError
# carries them in ``verify_code``.
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64

_VERIFY_REASONS = {
    X509_V_ERR_CERT_NOT_YET_VALID: Reason.TLS_EXPIRED,
    X509_V_ERR_CERT_HAS_EXPIRED: Reason.TLS_EXPIRED,
    X509_V_ERR_HOSTNAME_MISMATCH: Reason.TLS_HOSTNAME_MISMATCH,
    X509_V_ERR_IP_ADDRESS_MISMATCH: Reason.TLS_HOSTNAME_MISMATCH,
}

# Errno values that mean "no path": ICMP host/net unreachable, or no route in the local table.
UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL})
PROHIBITED = frozenset({errno.EACCES, errno.EPERM})
RESET = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def errno_name(exc: BaseException) -> str:
    """``ECONNREFUSED`` for an OSError with that errno; the exception's class name otherwise."""
    code = getattr(exc, "errno", None)
    return errno.errorcode.get(code, str(code)) if isinstance(code, int) else type(exc).__name__


def is_reset(exc: BaseException) -> bool:
    """The peer reset or aborted the connection (or it broke under a write)."""
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return True
    return isinstance(exc, OSError) and exc.errno in RESET


def classify_socket_error(exc: BaseException) -> Reason:
    """Map an exception raised while connecting or talking over TCP to a ``tcp_*`` reason."""
    if isinstance(exc, (TimeoutError, ConnectionRefusedError)):
        return Reason.TCP_TIMEOUT if isinstance(exc, TimeoutError) else Reason.TCP_REFUSED
    if is_reset(exc):
        return Reason.TCP_RESET
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno == errno.ECONNREFUSED:
            return Reason.TCP_REFUSED
        if exc.errno == errno.ETIMEDOUT:
            return Reason.TCP_TIMEOUT
        if exc.errno in UNREACHABLE:
            return Reason.TCP_UNREACHABLE
        if exc.errno in PROHIBITED:
            return Reason.TCP_PROHIBITED
    return Reason.TCP_ERROR


def classify_tls_error(exc: BaseException) -> Reason:
    """Map an exception raised during the TLS handshake (after TCP connected) to a ``tls_*`` reason."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_REASONS.get(exc.verify_code, Reason.TLS_UNTRUSTED)
    if isinstance(exc, TimeoutError):
        return Reason.TLS_TIMEOUT
    if is_reset(exc) or isinstance(exc, ssl.SSLEOFError):
        return Reason.TLS_RESET
    if isinstance(exc, ssl.SSLError) and "EOF" in str(exc):
        return Reason.TLS_RESET
    if isinstance(exc, ConnectionError) and not isinstance(exc, OSError):
        return Reason.TLS_RESET
    return Reason.TLS_HANDSHAKE_FAILED
