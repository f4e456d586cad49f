"""An authoritative DNS server for the shop's name (dnslib), answering with the healthy regions' addresses.

With no healthy region the answer is SERVFAIL (with an RFC 8914 extended error naming why, when the query speaks
EDNS). Why SERVFAIL: NXDOMAIN would claim the name does not exist and resolvers would cache that negative answer
for the SOA minimum; an empty NOERROR ("no address") is cached the same way. SERVFAIL says "this server cannot
answer right now": resolvers do not treat it as a fact about the name, retry, and recover as soon as a region is
healthy again. Unlike Route 53, which then answers with every record (fails open), we never hand out an address
we judge unhealthy.

Run as a global-plane process: ``python -m regionctl.routing.dns --plane <plane.json>``; its health, status and
metrics are served over HTTP on the plane's ``dns_admin`` port.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from dnslib import EDNS0, OPCODE, QTYPE, RCODE, RR, SOA, A, DNSLabel, DNSRecord, EDNSOption

from regionctl.routing.dataplane import DataPlane
from regionctl.routing.metrics import PlaneMetrics

EDE_OPTION = 15  # RFC 8914 Extended DNS Error
EDE_OTHER = 0
log = logging.getLogger(__name__)


def zone_of(name: str) -> str:
    return name.rstrip(".").split(".", 1)[1]


def _soa(zone: str, ttl: int) -> RR:
    return RR(zone, QTYPE.SOA, ttl=ttl, rdata=SOA(f"ns.{zone}", f"hostmaster.{zone}", (1, 60, 60, 3600, ttl)))


def answer(query: DNSRecord, name: str, ttl: int, addresses: Mapping[str, str], healthy: Sequence[str],
           explain: str, turn: int = 0) -> DNSRecord:
    """The reply to one query (pure). ``addresses`` maps region to IPv4 address; ``healthy`` is in routing order."""
    reply = query.reply()
    reply.header.ra = 0  # authoritative only, no recursion
    if query.header.opcode != OPCODE.QUERY:
        reply.header.rcode = RCODE.NOTIMP
        return reply
    if not query.questions:
        reply.header.rcode = RCODE.FORMERR
        return reply
    question = query.questions[0]
    qname, qtype, zone = question.qname, question.qtype, zone_of(name)
    if qname != DNSLabel(name) and not qname.matchSuffix(zone):
        reply.header.aa = 0
        reply.header.rcode = RCODE.REFUSED
        return reply
    if qname == DNSLabel(name):
        if not healthy:
            reply.header.rcode = RCODE.SERVFAIL
            if any(rr.rtype == QTYPE.OPT for rr in query.ar):
                text = explain.encode()[:400]
                reply.add_ar(EDNS0(udp_len=1232, opts=[EDNSOption(EDE_OPTION, struct.pack("!H", EDE_OTHER) + text)]))
            return reply
        if qtype in (QTYPE.A, QTYPE.ANY):
            shift = turn % len(healthy)
            for region in (*healthy[shift:], *healthy[:shift]):
                reply.add_answer(RR(name, QTYPE.A, ttl=ttl, rdata=A(addresses[region])))
            return reply
        reply.add_auth(_soa(zone, ttl))  # NODATA: the name exists, not with this type
        return reply
    if qname == DNSLabel(zone) and qtype in (QTYPE.SOA, QTYPE.ANY):
        reply.add_answer(_soa(zone, ttl))
        return reply
    if qname != DNSLabel(zone):
        reply.header.rcode = RCODE.NXDOMAIN
    reply.add_auth(_soa(zone, ttl))
    return reply


class DnsResponder:
    """Answers packets from the data plane's current view; counts queries and handed-out regions."""

    def __init__(self, plane: DataPlane, name: str, ttl: int, addresses: Mapping[str, str],
                 metrics: PlaneMetrics) -> None:
        self.plane = plane
        self.name = name
        self.ttl = ttl
        self.addresses = dict(addresses)
        self.metrics = metrics
        self._turn = itertools.count()

    def respond(self, packet: bytes) -> bytes | None:
        try:
            query = DNSRecord.parse(packet)
        except Exception:  # dnslib raises several types for garbage; a garbage packet gets no answer
            self.metrics.dns_queries.labels("unparsable").inc()
            return None
        healthy = self.plane.healthy
        reply = answer(query, self.name, self.ttl, self.addresses, healthy, self.plane.view.explain(),
                       next(self._turn))
        self.metrics.dns_queries.labels(RCODE.get(reply.header.rcode)).inc()
        for rr in reply.rr:
            if rr.rtype == QTYPE.A:
                region = next((r for r, a in self.addresses.items() if a == str(rr.rdata)), "unknown")
                self.metrics.dns_answers.labels(region).inc()
        return bytes(reply.pack())


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, responder: DnsResponder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.responder.respond(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def _tcp_client(responder: DnsResponder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            reply = responder.respond(await reader.readexactly(size))
            if reply is None:
                break
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.close()


async def serve(responder: DnsResponder, host: str, port: int) -> tuple[asyncio.BaseTransport, asyncio.Server]:
    """Start answering on UDP and TCP ``host:port``."""
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(responder), local_addr=(host, port))
    tcp = await asyncio.start_server(lambda r, w: _tcp_client(responder, r, w), host, port)
    return udp, tcp


def admin_app(plane: DataPlane, metrics: PlaneMetrics) -> Any:
    from fastapi import FastAPI, Response

    from regionctl.routing.metrics import CONTENT_TYPE_LATEST, render
    from regionctl.runtime import httperrors

    app = FastAPI(title="regionctl DNS admin")
    httperrors.install(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    def status() -> dict[str, Any]:
        return plane.status()

    @app.get("/metrics", response_class=Response)
    def prometheus() -> Response:
        return Response(render(metrics), media_type=CONTENT_TYPE_LATEST)

    return app


async def _run(plane_path: str) -> None:
    import uvicorn

    from regionctl.routing.health import HealthMonitor
    from regionctl.routing.plane import load_plane
    from regionctl.routing.source import HttpControlSource

    plane = load_plane(plane_path)
    metrics = PlaneMetrics("dns")
    source = HttpControlSource(plane.api.url, plane.cache_path("dns"), plane.control_poll_s)
    data_plane = DataPlane(plane.region_names(), source, HealthMonitor(plane.endpoints(), plane.health_config()),
                           metrics)
    responder = DnsResponder(data_plane, plane.dns_name, plane.dns_ttl_s,
                             {r.region: r.host for r in plane.regions}, metrics)
    await serve(responder, plane.dns.host, plane.dns.port)
    server = uvicorn.Server(uvicorn.Config(admin_app(data_plane, metrics), host=plane.dns_admin.host,
                                           port=plane.dns_admin.port, log_level="warning", access_log=False))
    plane_task = asyncio.create_task(data_plane.run())
    try:
        await server.serve()  # returns on SIGTERM/SIGINT (uvicorn handles the signals)
    finally:
        plane_task.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve DNS for the shop's name, for a global plane described by a plane file."""
    parser = argparse.ArgumentParser(prog="regionctl.routing.dns", description=main.__doc__)
    parser.add_argument("--plane", required=True, help="plane.json written by routing.launch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dns %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(_run(args.plane))


if __name__ == "__main__":
    main()
