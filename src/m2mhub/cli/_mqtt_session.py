"""Connecting ``m2mhub pub``/``sub`` to a broker, with mosquitto's debug lines and messages."""

from __future__ import annotations

import sys
from collections.abc import Callable

from m2mhub.cli._mqtt_options import MQTTOptions, connect_error_text, printer
from m2mhub.cli._trace_output import TraceOutput
from m2mhub.client.debug_log import client_name, packet_log_lines
from m2mhub.client.mqtt import (
    ConnectionLostError,
    ConnectionRefusedByBroker,
    Message,
    MQTTClient,
    PacketLogger,
)
from m2mhub.mqtt.packets import Packet

UNSUPPORTED_PROTOCOL_VERSION_V5 = 0x84
EXIT_CONNECTION_LOST = 7  # MOSQ_ERR_CONN_LOST, mosquitto_pub's exit code for a lost connection


def print_line(text: str) -> None:
    """One stdout line, flushed at once (output may be a pipe a test or script reads)."""
    out = sys.stdout
    out.write(text + "\n")
    out.flush()


def debug_logger(direction: str, packet: Packet, client_id: str) -> None:
    """``-d``: print libmosquitto's line(s) for each packet."""
    out = sys.stdout
    for line in packet_log_lines(direction, packet, client_id):
        out.write(line + "\n")
    out.flush()


def refused_text(exc: ConnectionRefusedByBroker) -> str:
    """mosquitto's ``Connection error: ...`` line for a refused CONNECT."""
    if exc.protocol_level == 5 and exc.code == UNSUPPORTED_PROTOCOL_VERSION_V5:
        return (
            f"Connection error: {exc}. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode."
        )
    return f"Connection error: {exc}"


class Session:
    """One command's client: connect with the options, report failures as mosquitto does."""

    def __init__(
        self,
        opts: MQTTOptions,
        program: str,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        self.opts = opts
        self.program = program
        self.err = printer(opts.quiet)
        self.trace = TraceOutput(opts.trace) if opts.trace is not None else None
        self.client = MQTTClient(
            on_message=on_message,
            on_packet=self._packet_logger(),
            max_inflight=opts.max_inflight,
        )
        self.client_id = opts.effective_client_id(program)
        # Why the last connect() failed: "refused" (CONNACK), "unreachable" or "lost".
        self.failure: str | None = None
        # mosquitto_sub silently tries again when the broker hangs up before CONNACK.
        self.retry_when_lost = False

    def _packet_logger(self) -> PacketLogger | None:
        """What sees each packet: ``-d`` lines on stdout, ``--trace`` lines on stderr, both."""
        trace = self.trace
        if trace is None:
            return debug_logger if self.opts.debug else None
        debug = self.opts.debug

        def log(direction: str, packet: Packet, client_id: str) -> None:
            if debug:
                debug_logger(direction, packet, client_id)
            conn = client_id or self.client_id or "client"
            level = self.client.protocol_level
            trace.mqtt(packet, trace.client_direction(direction), conn, level)

        return log

    def debug(self, text: str) -> None:
        """A debug-only line naming this client, e.g. ``Client (null) sending DISCONNECT``."""
        if self.opts.debug:
            print_line(f"Client {client_name(self.client.client_id or self.client_id)} {text}")

    async def connect(self) -> int | None:
        """Connect; None on success, else the exit status after printing the error."""
        opts = self.opts
        self.failure = None
        try:
            await self.client.connect(
                opts.host,
                opts.port,
                self.client_id,
                clean_session=opts.clean_session,
                keepalive=opts.keepalive,
                will=opts.will(),
                username=opts.username,
                password=opts.password,
                protocol=opts.protocol,
                properties=opts.connect_properties(),
                bind_address=opts.bind_address,
                unix_path=opts.unix_path,
            )
        except ConnectionRefusedByBroker as exc:
            self.failure = "refused"
            self.err(refused_text(exc))
            return self.refused(exc)
        except ConnectionLostError:
            self.failure = "lost"
            if not self.retry_when_lost:
                self.err("Error: The connection was lost.")
            return EXIT_CONNECTION_LOST
        except OSError as exc:
            self.failure = "unreachable"
            self.err(connect_error_text(exc))
            return 1
        return None

    def refused(self, exc: ConnectionRefusedByBroker) -> int:
        """What happens after a refusal is told; subclasses of behaviour live in pub/sub."""
        return exc.code
