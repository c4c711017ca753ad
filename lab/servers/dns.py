"""A small DNS server for tests and the lab: an in-memory zone, answered over UDP and TCP.

It answers like the recursive resolver a VM talks to: a name with a CNAME gets the whole chain
plus the final records, and per-name fault modes reproduce what broken resolvers and forwarders
do (SERVFAIL, REFUSED, silence, truncation). Zone, faults and mode may be changed while serving.

Run standalone (e.g. inside a lab namespace)::

    python -m lab.servers.dns --listen 10.0.0.53:53 --zone zone.json

where zone.json is ``{"records": {"name": [["A", "10.1.0.5", 300]]}, "faults": {"name": "servfail"}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import sys
from collections import Counter
from typing import Literal, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from lab.servers.base import LabServer, close_stream_server

Transport = Literal["udp", "tcp"]
FAULTS: frozenset[str] = frozenset({"servfail", "refused", "silent", "truncate"})
Record = tuple[str, str, int]

# Without EDNS a UDP answer must fit 512 bytes (RFC 1035); larger ones are sent with TC set.
_CLASSIC_UDP_SIZE = 512
_MAX_CHAIN = 16
_BIND_TRIES = 20

log = logging.getLogger(__name__)


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not always a DatagramTransport subclass (selector loop), though it has sendto().
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self._server.reply(data, "udp")
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)


class DnsServer(LabServer):
    """Serve ``records`` (A, AAAA, CNAME; names case-insensitive) on UDP and TCP at one address.

    ``records`` maps a name (``*.`` wildcards allowed) to ``(type, value, ttl)`` tuples.
    ``faults`` maps a name to a fault; it applies when the name is asked or met along a CNAME
    chain; a ``name/TYPE`` key (e.g. ``x.example/AAAA``) limits it to one query type.
    ``mode``, when set, is a fault applied to every query (a dead or broken resolver).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        records: dict[str, list[Record]] | None = None,
        faults: dict[str, str] | None = None,
        mode: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.records: dict[str, list[Record]] = dict(records or {})
        self.faults: dict[str, str] = dict(faults or {})
        self.mode = mode
        # (name, type, transport) -> number of queries received.
        self.queries: Counter[tuple[str, str, Transport]] = Counter()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -- zone editing -------------------------------------------------------------------------

    def add(self, name: str, rtype: str, value: str, ttl: int = 300) -> None:
        self.records.setdefault(name, []).append((rtype.upper(), value, ttl))

    def set(self, name: str, *records: Record) -> None:
        """Replace every record of ``name`` (no records: the name disappears)."""
        self.remove(name)
        if records:
            self.records[name] = list(records)

    def remove(self, name: str) -> None:
        for key in [k for k in self.records if _key(k) == _key(name)]:
            del self.records[key]

    def count(self, name: str | None = None, rtype: str | None = None, transport: str | None = None) -> int:
        """Queries received, filtered by name, type and transport (None: any)."""
        return sum(
            n
            for (qname, qtype, proto), n in self.queries.items()
            if (name is None or qname == _key(name))
            and (rtype is None or qtype == rtype.upper())
            and (transport is None or proto == transport)
        )

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def server_spec(self) -> str:
        """``host:port`` (``[v6]:port``), the form ProbeSettings.dns_servers takes."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(_BIND_TRIES):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
            port = int(transport.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError as exc:
                transport.close()
                # An ephemeral UDP port may be taken on the TCP side: pick another one.
                if exc.errno == errno.EADDRINUSE and self.port == 0:
                    continue
                raise
            self._udp = transport
            self.port = port
            return
        raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {self.host}")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            await close_stream_server(self._tcp, self._writers)
            self._tcp = None

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = self.reply(await reader.readexactly(size), "tcp")
                if reply is not None:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    # -- answering -----------------------------------------------------------------------------

    def reply(self, wire: bytes, transport: Transport) -> bytes | None:
        """The wire answer to one query, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        try:
            return self._answer(query, transport)
        except (dns.exception.DNSException, ValueError):
            # A record that does not parse: answer as a real server with a broken zone would,
            # instead of letting the exception close the UDP transport.
            log.exception("cannot answer %s", query.question[0])
            response = dns.message.make_response(query, recursion_available=True)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()

    def _answer(self, query: dns.message.Message, transport: Transport) -> bytes | None:
        question = query.question[0]
        qname = _key(question.name.to_text())
        qtype = question.rdtype
        self.queries[(qname, dns.rdatatype.to_text(qtype), transport)] += 1

        response = dns.message.make_response(query, recursion_available=True)
        response.flags |= dns.flags.AA
        chain, final, loop = self._walk(qname, follow=qtype != dns.rdatatype.CNAME)
        wanted = dns.rdatatype.to_text(qtype)
        met = (self._fault(n, wanted) for n in [qname, *(target for _, target, _ in chain)])
        fault = self.mode or next((f for f in met if f), None)
        if fault == "silent":
            return None
        if fault == "servfail" or loop:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if fault == "refused":
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        if fault == "truncate" and transport == "udp":
            response.flags |= dns.flags.TC
            return response.to_wire()

        for owner, target, ttl in chain:
            response.answer.append(dns.rrset.from_text(_absolute(owner), ttl, "IN", "CNAME", _absolute(target)))
        if not self._exists(final):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif qtype != dns.rdatatype.CNAME or not chain:
            found = [(value, ttl) for rtype, value, ttl in self._records(final) if rtype.upper() == wanted]
            if found:
                response.answer.append(
                    dns.rrset.from_text_list(
                        _absolute(final), min(ttl for _, ttl in found), "IN", wanted, [v for v, _ in found]
                    )
                )
        if transport == "tcp":
            # max_size would default to the query's EDNS payload, which only binds UDP.
            return response.to_wire(max_size=65535)
        limit = max(_CLASSIC_UDP_SIZE, query.payload) if query.edns >= 0 else _CLASSIC_UDP_SIZE
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query, recursion_available=True)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()

    def _fault(self, name: str, rtype: str) -> str | None:
        typed = f"{name}/{rtype.lower()}"
        for key, fault in self.faults.items():
            if _key(key) == typed:
                return fault
        for key, fault in self.faults.items():
            if _key(key) == name:
                return fault
        return None

    def _records(self, name: str) -> list[Record]:
        exact = [r for key, recs in self.records.items() if _key(key) == name for r in recs]
        if exact:
            return exact
        # Wildcards match only names that have no records of their own (RFC 4592, simplified).
        labels = name.split(".")
        for i in range(1, len(labels)):
            wildcard = "*." + ".".join(labels[i:])
            found = [r for key, recs in self.records.items() if _key(key) == wildcard for r in recs]
            if found:
                return found
        return []

    def _exists(self, name: str) -> bool:
        # A name with no records but names below it exists (an empty non-terminal): NOERROR, no data.
        return bool(self._records(name)) or any(_key(k).endswith("." + name) for k in self.records)

    def _walk(self, name: str, *, follow: bool) -> tuple[list[tuple[str, str, int]], str, bool]:
        """Follow CNAMEs from ``name``: (links, final name, whether the chain loops or runs too long)."""
        chain: list[tuple[str, str, int]] = []
        current, seen = name, {name}
        while True:
            cname = next(((v, t) for r, v, t in self._records(current) if r.upper() == "CNAME"), None)
            if cname is None:
                return chain, current, False
            target = _key(cname[0])
            chain.append((current, target, cname[1]))
            if not follow:
                return chain, target, False
            if target in seen or len(chain) > _MAX_CHAIN:
                return chain, target, True
            seen.add(target)
            current = target


def _listen(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    return host, int(port)


def _load_zone(path: str) -> tuple[dict[str, list[Record]], dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    records = {
        str(name): [(str(r[0]), str(r[1]), int(r[2]) if len(r) > 2 else 300) for r in recs]
        for name, recs in data.get("records", {}).items()
    }
    faults = {str(name): str(fault) for name, fault in data.get("faults", {}).items()}
    return records, faults


async def _serve(server: DnsServer) -> None:
    async with server:
        print(f"dns server listening on {server.server_spec}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.servers.dns", description="Serve an in-memory DNS zone.", allow_abbrev=False
    )
    parser.add_argument("--listen", default="127.0.0.1:5353", help="host:port ([v6]:port) to serve on")
    parser.add_argument("--zone", help="JSON file with 'records' and 'faults'")
    parser.add_argument("--mode", choices=sorted(FAULTS), help="a fault for every query")
    args = parser.parse_args(argv)
    records, faults = _load_zone(args.zone) if args.zone else ({}, {})
    host, port = _listen(args.listen)
    server = DnsServer(host, port, records=records, faults=faults, mode=args.mode)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
