"""A pcap writer that synthesises the IP/TCP/UDP packets a capture on the wire would show
(sans-IO apart from writing to the file object it is given).

The tracer sees byte streams and datagrams, not frames, so this module makes up the headers:
Ethernet (or none, with ``LINKTYPE_RAW``), IPv4 or IPv6 by the addresses' family, TCP with a
SYN / SYN-ACK / ACK handshake at the start, PSH-ACK data segments whose sequence and
acknowledgement numbers follow the bytes really sent, FIN-ACK from both sides at the end, and
UDP; every checksum is correct. Wireshark and tshark read the result like a real capture.

The ports are the ones the tracer sees: the client's own port and the upstream server's port,
so a server on 1883 or 5683 is dissected as MQTT or CoAP without any "Decode As".
"""

from __future__ import annotations

import ipaddress
import struct
from array import array
from sys import byteorder
from typing import BinaryIO, Final

__all__ = ["LINKTYPE_ETHERNET", "LINKTYPE_RAW", "PcapWriter", "TcpFlow"]

LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101

Address = tuple[str, int]

_FIN, _SYN, _PSH, _ACK = 0x01, 0x02, 0x08, 0x10
_MAX_SEGMENT: Final = 65_000  # keeps IPv4 total length under 65535
_CLIENT_MAC: Final = bytes.fromhex("020000000001")
_SERVER_MAC: Final = bytes.fromhex("020000000002")
_GLOBAL_HEADER: Final = struct.Struct("<IHHiIII")
_RECORD_HEADER: Final = struct.Struct("<IIII")


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) & 1:
        data += b"\x00"
    words = array("H", data)
    if byteorder == "little":
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class TcpFlow:
    """The synthetic TCP state of one traced connection: addresses and next sequence numbers."""

    __slots__ = ("client", "client_seq", "server", "server_seq")

    def __init__(self, client: Address, server: Address, client_isn: int, server_isn: int) -> None:
        self.client = client
        self.server = server
        self.client_seq = client_isn
        self.server_seq = server_isn


class PcapWriter:
    """Writes a classic libpcap file (microsecond timestamps) to ``out``.

    ``tcp_open`` starts a flow, ``tcp_data`` records bytes in either direction, ``tcp_close``
    ends it; ``udp`` records one datagram. Addresses are ``(ip, port)`` with IPv4 or IPv6 text.
    """

    __slots__ = ("_flows", "_ip_id", "_out", "linktype")

    def __init__(self, out: BinaryIO, linktype: int = LINKTYPE_ETHERNET) -> None:
        if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
            raise ValueError(f"unsupported link type {linktype}")
        self._out = out
        self.linktype = linktype
        self._ip_id = 0
        self._flows = 0
        out.write(_GLOBAL_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262_144, linktype))

    def flush(self) -> None:
        self._out.flush()

    # ---- framing ---------------------------------------------------------------------------

    def _record(self, when: float, frame: bytes) -> None:
        sec = int(when)
        usec = round((when - sec) * 1_000_000)
        if usec >= 1_000_000:
            sec += 1
            usec -= 1_000_000
        self._out.write(_RECORD_HEADER.pack(sec, usec, len(frame), len(frame)))
        self._out.write(frame)

    def _ip(self, src: str, dst: str, proto: int, segment_without_sum: bytes, sum_at: int) -> bytes:
        """IP header + transport segment with its checksum filled in at ``sum_at``."""
        s = ipaddress.ip_address(src)
        d = ipaddress.ip_address(dst)
        length = len(segment_without_sum)
        if s.version == 4 and d.version == 4:
            pseudo = s.packed + d.packed + struct.pack("!BBH", 0, proto, length)
        else:
            s6 = s if s.version == 6 else ipaddress.IPv6Address(f"::ffff:{s}")
            d6 = d if d.version == 6 else ipaddress.IPv6Address(f"::ffff:{d}")
            s, d = s6, d6
            pseudo = s.packed + d.packed + struct.pack("!IxxxB", length, proto)
        csum = _checksum(pseudo + segment_without_sum)
        if proto == 17 and csum == 0:
            csum = 0xFFFF
        segment = (
            segment_without_sum[:sum_at]
            + struct.pack("!H", csum)
            + segment_without_sum[sum_at + 2 :]
        )
        if s.version == 4:
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            head = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + length,
                self._ip_id,
                0x4000,
                64,
                proto,
                0,
                s.packed,
                d.packed,
            )
            head = head[:10] + struct.pack("!H", _checksum(head)) + head[12:]
            ethertype = 0x0800
        else:
            head = struct.pack("!IHBB16s16s", 0x60000000, length, proto, 64, s.packed, d.packed)
            ethertype = 0x86DD
        packet = head + segment
        if self.linktype == LINKTYPE_RAW:  # either IP version: readers look at the first nibble
            return packet
        return _SERVER_MAC + _CLIENT_MAC + struct.pack("!H", ethertype) + packet

    def _tcp(
        self, when: float, src: Address, dst: Address, seq: int, ack: int, flags: int, data: bytes
    ) -> None:
        header = struct.pack(
            "!HHIIBBHHH",
            src[1],
            dst[1],
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            5 << 4,
            flags,
            65535,
            0,
            0,
        )
        self._record(when, self._ip(src[0], dst[0], 6, header + data, 16))

    # ---- public API ------------------------------------------------------------------------

    def udp(self, when: float, src: Address, dst: Address, data: bytes) -> None:
        """One datagram from ``src`` to ``dst``."""
        header = struct.pack("!HHHH", src[1], dst[1], 8 + len(data), 0)
        self._record(when, self._ip(src[0], dst[0], 17, header + data, 6))

    def tcp_open(self, when: float, client: Address, server: Address) -> TcpFlow:
        """Record the three-way handshake of a new connection and return its flow."""
        self._flows += 1
        flow = TcpFlow(
            client, server, 0x1000_0000 + self._flows * 0x10_0000, 0x8000_0000 + self._flows
        )
        self._tcp(when, client, server, flow.client_seq, 0, _SYN, b"")
        self._tcp(when, server, client, flow.server_seq, flow.client_seq + 1, _SYN | _ACK, b"")
        flow.client_seq += 1
        flow.server_seq += 1
        self._tcp(when, client, server, flow.client_seq, flow.server_seq, _ACK, b"")
        return flow

    def tcp_data(self, when: float, flow: TcpFlow, from_client: bool, data: bytes) -> None:
        """Bytes sent on the flow, as PSH-ACK segments of at most 65000 bytes."""
        for off in range(0, len(data), _MAX_SEGMENT):
            chunk = data[off : off + _MAX_SEGMENT]
            if from_client:
                self._tcp(
                    when,
                    flow.client,
                    flow.server,
                    flow.client_seq,
                    flow.server_seq,
                    _PSH | _ACK,
                    chunk,
                )
                flow.client_seq += len(chunk)
            else:
                self._tcp(
                    when,
                    flow.server,
                    flow.client,
                    flow.server_seq,
                    flow.client_seq,
                    _PSH | _ACK,
                    chunk,
                )
                flow.server_seq += len(chunk)

    def tcp_close(self, when: float, flow: TcpFlow, client_first: bool = True) -> None:
        """FIN-ACK from both sides and the last ACK."""
        c, s = flow.client, flow.server
        if client_first:
            self._tcp(when, c, s, flow.client_seq, flow.server_seq, _FIN | _ACK, b"")
            flow.client_seq += 1
            self._tcp(when, s, c, flow.server_seq, flow.client_seq, _FIN | _ACK, b"")
            flow.server_seq += 1
            self._tcp(when, c, s, flow.client_seq, flow.server_seq, _ACK, b"")
        else:
            self._tcp(when, s, c, flow.server_seq, flow.client_seq, _FIN | _ACK, b"")
            flow.server_seq += 1
            self._tcp(when, c, s, flow.client_seq, flow.server_seq, _FIN | _ACK, b"")
            flow.client_seq += 1
            self._tcp(when, s, c, flow.server_seq, flow.client_seq, _ACK, b"")
