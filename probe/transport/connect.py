"""TCP connect: happy eyeballs over the resolved addresses (RFC 8305), with every attempt described.

A refusal is proof that the path works and nothing listens; silence only suggests a drop.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import time
from dataclasses import dataclass, field

from probe.deadline import Deadline, Stopwatch, now
from probe.descriptors import DescriptorsExhausted, check
from probe.errors import ConnectFailed
from probe.reasons import Reason
from probe.transport.classify import classify_socket_error, errno_name

# RFC 8305 section 5: the recommended "Connection Attempt Delay".
ATTEMPT_DELAY = 0.250

# Which failure explains the outcome best when several addresses failed differently: a reset or
# refusal proves a packet came back, so it says more than an unreachable route or silence.
_PRIORITY = [
    Reason.TCP_RESET,
    Reason.TCP_REFUSED,
    Reason.TCP_UNREACHABLE,
    Reason.TCP_PROHIBITED,
    Reason.TCP_TIMEOUT,
    Reason.TCP_ERROR,
]

_MEANING = {
    Reason.TCP_RESET: "reset by the peer",
    Reason.TCP_REFUSED: "refused",
    Reason.TCP_UNREACHABLE: "no route to the address (ICMP unreachable or missing route)",
    Reason.TCP_PROHIBITED: "forbidden by local policy",
    Reason.TCP_TIMEOUT: "dropped silently (firewall/NSG or route to nowhere)",
    Reason.TCP_ERROR: "socket error",
}


@dataclass
class Connected:
    sock: socket.socket
    peer: str
    connect_ms: float
    attempts: list[str]
    address: str = ""


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def interleave(addresses: list[str]) -> list[str]:
    """IPv6 first, then alternate families (RFC 8305 section 4); duplicates dropped."""
    v6: list[str] = []
    v4: list[str] = []
    for addr in dict.fromkeys(a.strip("[]") for a in addresses):
        try:
            version = ipaddress.ip_address(addr.split("%", 1)[0]).version
        except ValueError:
            version = 6 if ":" in addr else 4
        (v6 if version == 6 else v4).append(addr)
    order: list[str] = []
    for i in range(max(len(v6), len(v4))):
        order.extend(fam[i] for fam in (v6, v4) if i < len(fam))
    return order


@dataclass
class _Attempt:
    address: str
    started: float = field(default_factory=time.perf_counter)
    # perf_counter when the outcome (connected, refused, ...) was seen by the event loop.
    ended: float | None = None

    def ms(self) -> float:
        end = self.ended if self.ended is not None else time.perf_counter()
        return round((end - self.started) * 1000.0, 3)


async def _attempt(att: _Attempt, port: int) -> socket.socket:
    """Connect to ``att.address``; ``att.ended`` is stamped in the event loop's callback for the
    socket's readiness, where the kernel's answer is first seen, not when this coroutine next runs.
    """
    loop = asyncio.get_running_loop()
    # Numeric only (no lookup); gives the right sockaddr shape, including IPv6 scope ids.
    family, type_, proto, _, sockaddr = socket.getaddrinfo(
        att.address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
    )[0]
    try:
        sock = socket.socket(family, type_, proto)
    except OSError as exc:
        check(exc)
        raise
    try:
        sock.setblocking(False)
        att.started = time.perf_counter()
        err = sock.connect_ex(sockaddr)
        if err in (errno.EINPROGRESS, errno.EAGAIN):
            fd = sock.fileno()
            ready: asyncio.Future[float] = loop.create_future()

            def writable() -> None:
                if not ready.done():
                    ready.set_result(time.perf_counter())

            loop.add_writer(fd, writable)
            try:
                att.ended = await ready
            finally:
                loop.remove_writer(fd)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        else:
            att.ended = time.perf_counter()
        if err:
            # OSError(errno, ...) yields the matching subclass (ConnectionRefusedError, ...).
            raise OSError(err, os.strerror(err))
    except BaseException:
        sock.close()
        raise
    return sock


def _describe_failure(reason: Reason, exc: BaseException, ms: float) -> str:
    if reason is Reason.TCP_REFUSED:
        return f"refused in {ms:g} ms"
    if reason is Reason.TCP_TIMEOUT:
        return f"timed out after {ms:g} ms"
    if reason is Reason.TCP_UNREACHABLE:
        return f"unreachable ({errno_name(exc)}) in {ms:g} ms"
    if reason is Reason.TCP_PROHIBITED:
        return f"prohibited ({errno_name(exc)}) in {ms:g} ms"
    if reason is Reason.TCP_RESET:
        return f"reset ({errno_name(exc)}) in {ms:g} ms"
    return f"failed ({exc!s} [{errno_name(exc)}]) in {ms:g} ms"


def _failure_detail(
    reason: Reason, failures: list[tuple[str, Reason]], port: int, waited_s: float, exc_note: str
) -> str:
    main = [ep for ep, r in failures if r is reason]
    where = main[0] if len(main) == 1 else f"{len(main)} addresses ({', '.join(main)})"
    if reason is Reason.TCP_TIMEOUT:
        text = f"Connection to {where} timed out after {waited_s:.1f} s: {_MEANING[reason]}"
    elif reason is Reason.TCP_ERROR:
        text = f"Connection to {where} failed: {exc_note}"
    elif reason is Reason.TCP_REFUSED:
        text = f"Connection to {where} refused: nothing listens on port {port}, or a firewall rejects it"
    else:
        text = f"Connection to {where} failed: {_MEANING[reason]}"
    others = [f"{ep} {r.value}" for ep, r in failures if r is not reason]
    if others:
        text += f" (also tried: {', '.join(others)})"
    return text + "."


async def connect_tcp(addresses: list[str], port: int, deadline: Deadline) -> Connected:
    """Connect to the first address that answers, RFC 8305 style, within ``deadline``.

    Attempts start in interleaved order, each ATTEMPT_DELAY after the previous one or at once when
    the previous one fails; the first to connect wins and the rest are cancelled and closed.
    Returns a connected non-blocking socket the caller owns; raises ConnectFailed otherwise, or
    DescriptorsExhausted when no socket could be had (back-pressure for the runner, not a result).
    """
    order = interleave(addresses)
    watch = Stopwatch()
    t0 = time.perf_counter()
    if not order:
        raise ConnectFailed(Reason.TCP_ERROR, "No address to connect to.", [], 0.0)
    if len(order) == 1:
        return await _connect_one(order[0], port, deadline, t0)
    running: dict[asyncio.Task[socket.socket], _Attempt] = {}
    lines: dict[str, str] = {}
    failures: list[tuple[str, Reason]] = []
    last_exc: BaseException | None = None
    next_index = 0
    last_start = now()
    winner: tuple[_Attempt, socket.socket] | None = None
    tried: list[_Attempt] = []
    try:
        start_next = True
        while winner is None and not deadline.passed:
            if start_next and next_index < len(order):
                att = _Attempt(order[next_index])
                tried.append(att)
                next_index += 1
                running[asyncio.ensure_future(_attempt(att, port))] = att
                last_start = now()
            if not running:
                break
            timeout = deadline.remaining()
            if next_index < len(order):
                timeout = min(timeout, max(0.0, last_start + ATTEMPT_DELAY - now()))
            done, _ = await asyncio.wait(set(running), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            # A failure starts the next attempt at once; so does the delay running out.
            start_next = not done or any(t.exception() is not None for t in done)
            for task in done:
                att = running.pop(task)
                ep = endpoint(att.address, port)
                exc = task.exception()
                if exc is None:
                    sock = task.result()
                    if winner is None:
                        winner = (att, sock)
                        lines[ep] = f"{ep} connected in {att.ms():g} ms"
                    else:
                        # Two finished in the same instant: keep the first, close the other.
                        sock.close()
                        lines[ep] = f"{ep} connected in {att.ms():g} ms, not used"
                    continue
                if isinstance(exc, DescriptorsExhausted):
                    raise exc
                last_exc = exc
                reason = classify_socket_error(exc)
                failures.append((ep, reason))
                lines[ep] = f"{ep} {_describe_failure(reason, exc, att.ms())}"
    finally:
        try:
            await _abandon(running)
        except BaseException:
            if winner is not None:
                winner[1].close()
            raise
    for att in running.values():
        ep = endpoint(att.address, port)
        if winner is not None:
            lines[ep] = f"{ep} abandoned after {att.ms():g} ms: another address answered first"
        else:
            lines[ep] = f"{ep} timed out after {att.ms():g} ms"
            failures.append((ep, Reason.TCP_TIMEOUT))
    # Attempts are listed in the order they were started.
    attempts = [lines[endpoint(a, port)] for a in order[:next_index]]
    if winner is not None:
        att, sock = winner
        # Up to the moment the event loop saw the connection complete.
        connect_ms = round(((att.ended or time.perf_counter()) - t0) * 1000.0, 3)
        return Connected(
            sock=sock, peer=endpoint(att.address, port), connect_ms=connect_ms, attempts=attempts, address=att.address
        )
    not_tried = [endpoint(a, port) for a in order[next_index:]]
    attempts.extend(f"{ep} not tried: no time left" for ep in not_tried)
    if not failures:
        failures = [(ep, Reason.TCP_TIMEOUT) for ep in not_tried]
    reason = min((r for _, r in failures), key=_PRIORITY.index)
    ends = [a.ended for a in tried]
    if running or not_tried or not ends or None in ends:
        elapsed = watch.ms()
    else:
        # Every attempt ended with an answer (refused, unreachable): up to the last one seen.
        elapsed = round((max(e for e in ends if e is not None) - t0) * 1000.0, 3)
    note = f"{last_exc!s} ({errno_name(last_exc)})" if last_exc is not None else "unknown error"
    raise ConnectFailed(reason, _failure_detail(reason, failures, port, elapsed / 1000.0, note), attempts, elapsed)


async def _connect_one(address: str, port: int, deadline: Deadline, t0: float) -> Connected:
    """connect_tcp for a single address: the same outcome and wording, without racing machinery."""
    att = _Attempt(address)
    ep = endpoint(address, port)
    try:
        sock = await deadline.within(_attempt(att, port))
    except DescriptorsExhausted:
        raise
    except TimeoutError:
        ms = att.ms()
        detail = _failure_detail(Reason.TCP_TIMEOUT, [(ep, Reason.TCP_TIMEOUT)], port, ms / 1000.0, "unknown error")
        raise ConnectFailed(Reason.TCP_TIMEOUT, detail, [f"{ep} timed out after {ms:g} ms"], ms) from None
    except OSError as exc:
        reason = classify_socket_error(exc)
        ms = round(((att.ended or time.perf_counter()) - t0) * 1000.0, 3)
        note = f"{exc!s} ({errno_name(exc)})"
        detail = _failure_detail(reason, [(ep, reason)], port, ms / 1000.0, note)
        raise ConnectFailed(reason, detail, [f"{ep} {_describe_failure(reason, exc, att.ms())}"], ms) from None
    connect_ms = round(((att.ended or time.perf_counter()) - t0) * 1000.0, 3)
    attempts = [f"{ep} connected in {att.ms():g} ms"]
    return Connected(sock=sock, peer=ep, connect_ms=connect_ms, attempts=attempts, address=address)


async def _abandon(running: dict[asyncio.Task[socket.socket], _Attempt]) -> None:
    """Cancel unfinished attempts and close any socket one of them managed to connect meanwhile."""
    for task in running:
        task.cancel()
    if running:
        await asyncio.gather(*running, return_exceptions=True)
    for task in running:
        if not task.cancelled() and task.exception() is None:
            task.result().close()
