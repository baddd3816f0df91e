"""``--trace`` / ``--detail`` / ``--json``: packets on stderr through the shared formatter.

Every command that talks MQTT or CoAP (``pub``, ``sub``, ``coap``, ``serve``) offers the same
three flags; their lines are those of ``m2mhub trace``, so a packet reads the same everywhere.
The commands' mosquitto/libcoap-compatible ``-d``/``-v`` output is left untouched.
"""

from __future__ import annotations

import sys
import time
from typing import Final, TextIO

from m2mhub.coap.message import Message
from m2mhub.mqtt.packets import Packet
from m2mhub.trace.format import CLIENT_TO_SERVER, SERVER_TO_CLIENT, PacketFormatter, Style

TRACE_FLAGS: Final[dict[str, Style]] = {"--trace": "line", "--detail": "detail", "--json": "json"}

TRACE_HELP: Final = """\
 --trace : print every packet sent and received on stderr, one line each (as m2mhub trace).
 --detail : with --trace, print each packet in detail (fields and hex dump). Implies --trace.
 --json : with --trace, print one JSON object per packet. Implies --trace."""

# The client libraries name directions as mosquitto's debug log does.
_CLIENT_DIRECTIONS: Final = {"sending": CLIENT_TO_SERVER, "received": SERVER_TO_CLIENT}


def trace_style(current: Style | None, flag: str) -> Style:
    """The style after ``flag`` (one of :data:`TRACE_FLAGS`): ``--trace`` keeps a chosen style."""
    if flag == "--trace" and current is not None:
        return current
    return TRACE_FLAGS[flag]


class TraceOutput:
    """Writes formatted packets, one unit at a time, flushed (stderr may be a pipe)."""

    __slots__ = ("formatter", "out")

    def __init__(self, style: Style, out: TextIO | None = None) -> None:
        self.formatter = PacketFormatter(style)
        self.out = out if out is not None else sys.stderr

    def _write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def mqtt(
        self, packet: Packet, direction: str, conn: str, level: int, raw: bytes | None = None
    ) -> None:
        """One MQTT packet; ``direction`` is ``->`` (towards the server) or ``<-``."""
        self._write(
            self.formatter.mqtt(
                packet, when=time.time(), direction=direction, conn=conn, level=level, raw=raw
            )
        )

    def coap(self, msg: Message, direction: str, conn: str, raw: bytes | None = None) -> None:
        """One CoAP message."""
        self._write(
            self.formatter.coap(msg, when=time.time(), direction=direction, conn=conn, raw=raw)
        )

    def malformed(
        self, raw: bytes, error: Exception, direction: str, conn: str, protocol: str
    ) -> None:
        """Bytes that did not decode."""
        self._write(
            self.formatter.malformed(
                raw, error, when=time.time(), direction=direction, conn=conn, protocol=protocol
            )
        )

    def event(self, text: str, conn: str, protocol: str) -> None:
        """A connection event (opened, closed)."""
        self._write(self.formatter.event(text, when=time.time(), conn=conn, protocol=protocol))

    def client_direction(self, direction: str) -> str:
        """The formatter's arrow for a client library's ``sending``/``received``."""
        return _CLIENT_DIRECTIONS[direction]
