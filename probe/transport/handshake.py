"""A TLS client handshake over a connected socket, and the wording for one that failed.

The handshake is driven here over memory BIOs on the connected socket, not through asyncio's
SSL transport: a probe needs no stream afterwards, asyncio's transport costs a 256 KiB buffer and
a third of a handshake's CPU per connection, and the completion is stamped in the socket's
reader callback, where it happens. OpenSSL verifies the chain and names; its verified chain
names the trust anchor. Certificates are kept as DER: describing them needs cryptography, which the
tls prober loads off the path of the other probes (probe.probers.tlscerts).
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import errno
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from probe.deadline import Deadline
from probe.reasons import Reason
from probe.recorder import Connection

# One read: a TLS record is at most 16 KiB plus its header and expansion.
_RECV_SIZE = 17 * 1024


@dataclass
class Session:
    """What one completed handshake revealed; certificates as DER, leaf first (read with probe.transport.x509)."""

    version: str | None
    cipher: str | None
    alpn: str | None
    chain: list[bytes] = field(default_factory=list)
    # OpenSSL's own verified chain, ending at the trust anchor it used (empty when not verified).
    verified_chain: list[bytes] = field(default_factory=list)
    handshake_ms: float | None = None


def _der_list(sslobj: Any, method: str) -> list[bytes]:
    """DER certificates from ``get_(un)verified_chain``: public on 3.13+, private on 3.10-3.12."""
    fn = getattr(sslobj, method, None)
    if fn is None:
        fn = getattr(getattr(sslobj, "_sslobj", None), method, None)
    if fn is None:
        return []
    try:
        items = fn() or []
    except (ssl.SSLError, ValueError, AttributeError):
        return []
    der_format = getattr(_ssl, "ENCODING_DER", 2)
    out: list[bytes] = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
        elif hasattr(item, "public_bytes"):
            out.append(item.public_bytes(der_format))
    return out


def read_session(sslobj: Any) -> Session:
    cipher = sslobj.cipher()
    session = Session(
        version=sslobj.version(),
        cipher=cipher[0] if cipher else None,
        alpn=sslobj.selected_alpn_protocol(),
    )
    session.chain = _der_list(sslobj, "get_unverified_chain")
    if not session.chain:
        leaf = sslobj.getpeercert(binary_form=True)
        session.chain = [leaf] if leaf else []
    session.verified_chain = _der_list(sslobj, "get_verified_chain")
    return session


class _Driver:
    """One client handshake over a connected non-blocking socket, pushed by the event loop's
    readiness callbacks: bytes in from the socket to OpenSSL, bytes out from OpenSSL to the socket.
    """

    def __init__(
        self, sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
    ) -> None:
        self.sock, self.tls, self.incoming, self.outgoing = sock, tls, incoming, outgoing
        self.loop = asyncio.get_running_loop()
        # Resolves to the perf_counter at which the handshake completed, or to what broke it.
        self.done: asyncio.Future[float] = self.loop.create_future()
        self.unsent = b""
        self.fd = sock.fileno()
        self.loop.add_reader(self.fd, self._readable)

    def start(self) -> None:
        self._advance()

    def stop(self) -> None:
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)

    def _fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()
        self._advance()

    def _advance(self) -> None:
        if self.done.done():
            return
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, OSError) as exc:
            # OpenSSL's alert (bad certificate, ...) still goes out: the peer learns why we stop.
            self._flush()
            self._fail(exc)
            return
        at = time.perf_counter()
        self._flush()
        self.done.set_result(at)

    def _flush(self) -> None:
        self.unsent += self.outgoing.read()
        if not self.unsent:
            return
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        self.unsent = self.unsent[sent:]
        if self.unsent:
            self.loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        self.loop.remove_writer(self.fd)
        self._flush()

    def close(self) -> None:
        """Say goodbye (close_notify), take what the peer already sent (session tickets), close."""
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            self.tls.unwrap()
        with contextlib.suppress(OSError):
            self.sock.send(self.unsent + self.outgoing.read())
        with contextlib.suppress(OSError):
            # Unread data would make close() send a reset instead of a FIN; take what is there, no waiting.
            for _ in range(4):
                if not self.sock.recv(_RECV_SIZE):
                    break
        self.sock.close()


async def handshake(sock: socket.socket, server_name: str, ctx: ssl.SSLContext, deadline: Deadline) -> Session:
    """TLS over the connected ``sock``; the socket is consumed (closed) whatever happens.

    ``Session.handshake_ms`` runs from the ClientHello to the moment the reader callback saw the
    handshake complete.
    """
    try:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
        driver = _Driver(sock, tls, incoming, outgoing)
    except BaseException:
        sock.close()
        raise
    try:
        started = time.perf_counter()
        driver.start()
        finished = await deadline.within(driver.done)
        session = read_session(tls)
        session.handshake_ms = round((finished - started) * 1000.0, 3)
        return session
    finally:
        driver.stop()
        if not driver.done.done():
            driver.done.cancel()
        elif not driver.done.cancelled():
            driver.done.exception()  # retrieved: the caller got it through ``within``
        driver.close()


def where_to(conn: Connection, target: str) -> str:
    """'host:port', or 'host:port through proxy URL', for a sentence about the connection."""
    if conn.route == "proxy":
        return f"{target} through proxy {conn.peer}"
    return conn.peer or target


def _ssl_message(exc: BaseException) -> str:
    # "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)": the source line is noise.
    return re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc)) or type(exc).__name__


def handshake_failure_detail(reason: Reason, exc: BaseException, where: str, waited_s: float) -> str:
    """One sentence for a TLS handshake that failed for a reason other than certificate verification."""
    if reason is Reason.TLS_TIMEOUT:
        return (
            f"Connected to {where} but the TLS handshake did not finish within {waited_s:.1f} s: "
            "the peer accepts TCP and never answers the ClientHello."
        )
    if reason is Reason.TLS_RESET:
        if isinstance(exc, OSError) and exc.errno == errno.ECONNRESET:
            how = "reset the connection (RST)"
        else:
            how = f"closed the connection ({_ssl_message(exc) if str(exc) else 'EOF'})"
        return (
            f"Connected to {where} but the peer {how} during the TLS handshake: "
            "a firewall or proxy may be rejecting the server name, or the port does not speak TLS."
        )
    hint = ""
    if getattr(exc, "reason", None) == "WRONG_VERSION_NUMBER":
        hint = ": the peer answered with something that is not TLS (plain HTTP on this port?)"
    return f"TLS handshake with {where} failed ({_ssl_message(exc)}){hint}."
