"""``m2mhub serve --trace`` / ``-w FILE.pcap``: every MQTT packet and CoAP datagram in and out.

A :class:`~m2mhub.net.mqtt_server.ConnectionTap` splits each connection's bytes into packets
(:mod:`m2mhub.trace.mqtt_stream`), prints them with the tracer's formatter and records them in
a pcap file; it is also the CoAP face's :class:`~m2mhub.net.coap_server.DatagramTap`, so CoAP
datagrams go the same way. So ``m2mhub serve --trace`` reads like ``m2mhub trace`` in front of
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any, BinaryIO

from m2mhub.trace.format import CLIENT_TO_SERVER, SERVER_TO_CLIENT, PacketFormatter, Style
from m2mhub.trace.mqtt_stream import MqttConversation
from m2mhub.trace.pcap import Address, PcapWriter, TcpFlow
from m2mhub.trace.proxy import TraceSink


def _addr(name: Any) -> Address:
    return (str(name[0]), int(name[1])) if name else ("0.0.0.0", 0)


def _show(addr: Address) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


class _ServeSink(TraceSink):
    """The tracer's sink, with failures told as the hub's (which goes on serving)."""

    __slots__ = ()

    def failure(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.broken = True
        if self.failures < 3:
            self.failures += 1
            with contextlib.suppress(Exception):
                print(f"m2mhub serve: tracing failed ({exc!r}); still serving", file=sys.stderr)


class _Traced:
    """One connection: its packet splitter, its number and its pcap flow."""

    __slots__ = ("conversation", "flow", "number")

    def __init__(self, number: int, flow: TcpFlow | None) -> None:
        self.number = number
        self.conversation = MqttConversation()
        self.flow = flow

    @property
    def conn(self) -> str:
        cid = self.conversation.client_id
        return f"c{self.number}" if cid is None else f"c{self.number}({cid})"


class ServeTracer:
    """Prints (``style``, on stderr) and/or records (``pcap_out``) every connection's packets.

    Tracing failures are reported once and never disturb the broker.
    """

    def __init__(self, style: Style | None, pcap_out: BinaryIO | None) -> None:
        self.print_packets = style is not None
        pcap = PcapWriter(pcap_out) if pcap_out is not None else None
        self.sink = _ServeSink(PacketFormatter(style or "line"), sys.stderr, pcap)
        self._conns: dict[asyncio.BaseTransport, _Traced] = {}
        self._count = 0

    def opened(self, transport: asyncio.BaseTransport) -> None:
        try:
            when = time.time()
            client = _addr(transport.get_extra_info("peername"))
            server = _addr(transport.get_extra_info("sockname"))
            pcap = self.sink.pcap
            flow = pcap.tcp_open(when, client, server) if pcap is not None else None
            self._count += 1
            traced = _Traced(self._count, flow)
            self._conns[transport] = traced
            if self.print_packets:
                text = f"connection from {_show(client)} to {_show(server)}"
                self.sink.emit(
                    self.sink.formatter.event(text, when=when, conn=traced.conn, protocol="mqtt")
                )
        except Exception as exc:  # tracing must never stop the broker
            self.sink.failure(exc)

    def received(self, transport: asyncio.BaseTransport, data: bytes) -> None:
        self._data(transport, True, data)

    def sent(self, transport: asyncio.BaseTransport, data: bytes) -> None:
        self._data(transport, False, data)

    def _data(self, transport: asyncio.BaseTransport, from_client: bool, data: bytes) -> None:
        traced = self._conns.get(transport)
        if traced is None or not data:
            return
        try:
            when = time.time()
            sink = self.sink
            if sink.pcap is not None and traced.flow is not None:
                sink.pcap.tcp_data(when, traced.flow, from_client, data)
                sink.pcap.flush()
            conv = traced.conversation
            frames = (conv.from_client if from_client else conv.from_server).feed(data)
            if self.print_packets:
                arrow = CLIENT_TO_SERVER if from_client else SERVER_TO_CLIENT
                sink.mqtt_frames(frames, when, arrow, traced.conn)
        except Exception as exc:  # tracing must never stop the broker
            self.sink.failure(exc)

    def datagram(self, local: Address, peer: Address, received: bool, data: bytes) -> None:
        """One CoAP datagram on the hub's socket at ``local``, from or to ``peer``."""
        try:
            when = time.time()
            sink = self.sink
            if sink.pcap is not None:
                src, dst = (peer, local) if received else (local, peer)
                sink.pcap.udp(when, src, dst, data)
                sink.pcap.flush()
            if self.print_packets:
                arrow = CLIENT_TO_SERVER if received else SERVER_TO_CLIENT
                sink.coap_datagram(data, when, arrow, _show(peer))
        except Exception as exc:  # tracing must never stop the server
            self.sink.failure(exc)

    def closed(self, transport: asyncio.BaseTransport) -> None:
        traced = self._conns.pop(transport, None)
        if traced is None:
            return
        try:
            when = time.time()
            sink = self.sink
            if self.print_packets:
                sink.emit(
                    sink.formatter.event("closed", when=when, conn=traced.conn, protocol="mqtt")
                )
            if sink.pcap is not None and traced.flow is not None:
                sink.pcap.tcp_close(when, traced.flow)
                sink.pcap.flush()
        except Exception as exc:  # tracing must never stop the broker
            self.sink.failure(exc)
