"""A broker with a fake clock and in-memory clients that speak real MQTT bytes."""

from __future__ import annotations

from typing import Any

from m2mhub.hub.broker import Broker
from m2mhub.hub.connection import Connection
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.mqtt.codec import PacketReader, encode
from m2mhub.mqtt.packets import (
    Connack,
    Connect,
    Disconnect,
    Packet,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsubscribe,
    Will,
)


class FakeSink:
    """Collects what the broker writes; remembers whether it was closed."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.writes = 0
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def write(self, data: Any) -> None:
        assert not self.closed, "write after close"
        self.data += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


class Hub:
    """A broker, its collected log lines and a clock the test moves by hand."""

    def __init__(self, **settings: Any) -> None:
        settings.setdefault("sys_interval", 0)
        self.settings = BrokerSettings(**settings)
        self.log = BrokerLog(("all",), collect=True)
        self.now = 1000.0
        self.wakeups = 0
        ids = iter(range(1, 1_000_000))
        self.broker = Broker(
            self.settings,
            self.log,
            now=self.now,
            wakeup=self._wakeup,
            client_id_factory=lambda: f"auto-{next(ids):08X}",
        )

    def _wakeup(self) -> None:
        self.wakeups += 1

    @property
    def lines(self) -> list[str]:
        assert self.log.lines is not None
        return self.log.lines

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.broker.tick(self.now)
        self.broker.flush()

    def client(self, client_id: str = "c", level: int = 4, port: int = 50000) -> Client:
        return Client(self, client_id, level, port)

    def connected(
        self, client_id: str = "c", level: int = 4, clean: bool = True, **connect: Any
    ) -> Client:
        """A client that has sent CONNECT and received CONNACK 0."""
        c = self.client(client_id, level)
        ack = c.connect(clean=clean, **connect)
        assert isinstance(ack, Connack) and ack.reason_code == 0, ack
        return c


class Client:
    """One test connection: send packets as bytes, read back decoded packets."""

    _next_port = 40000

    def __init__(self, hub: Hub, client_id: str, level: int, port: int) -> None:
        self.hub = hub
        self.client_id = client_id
        self.level = level
        self.sink = FakeSink()
        Client._next_port += 1
        self.conn: Connection = hub.broker.connection_made(
            self.sink, f"127.0.0.1:{Client._next_port}", 1883, hub.now
        )
        self.reader = PacketReader(protocol_level=level)
        self._read = 0
        self.pending: list[Packet] = []

    # -- sending
    def send_bytes(self, data: bytes) -> None:
        self.hub.broker.data_received(self.conn, data, self.hub.now)
        self.hub.broker.flush()

    def send(self, packet: Packet) -> None:
        self.send_bytes(encode(packet, self.level))

    def connect(
        self,
        clean: bool = True,
        keepalive: int = 60,
        will: Will | None = None,
        username: str | None = None,
        password: bytes | None = None,
        properties: dict[int, Any] | None = None,
        client_id: str | None = None,
    ) -> Packet | None:
        self.send(
            Connect(
                protocol_level=self.level,
                client_id=self.client_id if client_id is None else client_id,
                clean_start=clean,
                keepalive=keepalive,
                will=will,
                username=username,
                password=password,
                properties=properties or {},
                protocol_name="MQIsdp" if self.level == 3 else "MQTT",
            )
        )
        got = self.received()
        self.pending = got[1:]
        return got[0] if got else None

    def subscribe(self, *filters: tuple[str, int], packet_id: int = 1) -> Suback:
        self.send(Subscribe(packet_id, [(f, SubscriptionOptions(qos=q)) for f, q in filters]))
        got = self.received()
        assert got and isinstance(got[0], Suback), got
        self.pending = got[1:]
        return got[0]

    def unsubscribe(self, *filters: str, packet_id: int = 2) -> list[Packet]:
        self.send(Unsubscribe(packet_id, list(filters)))
        return self.received()

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        packet_id: int | None = None,
        dup: bool = False,
    ) -> list[Packet]:
        if qos and packet_id is None:
            packet_id = 1
        self.send(Publish(topic, payload, qos, retain, dup, packet_id if qos else None))
        return self.received()

    def publish_complete(
        self, topic: str, payload: bytes, qos: int, retain: bool = False, packet_id: int = 7
    ) -> None:
        """Publish and finish the inbound handshake (PUBACK or PUBREC/PUBREL/PUBCOMP)."""
        got = self.publish(topic, payload, qos, retain, packet_id)
        if qos == 1:
            assert any(isinstance(p, Puback) for p in got), got
        elif qos == 2:
            assert any(isinstance(p, Pubrec) for p in got), got
            self.send(Pubrel(packet_id))
            assert any(isinstance(p, Pubcomp) for p in self.received())

    def disconnect(self) -> None:
        self.send(Disconnect())

    def drop(self) -> None:
        """The socket goes away without DISCONNECT."""
        self.hub.broker.connection_lost(self.conn, self.hub.now)
        self.hub.broker.flush()

    # -- receiving
    def received(self) -> list[Packet]:
        """Packets the broker wrote since the last call."""
        data = bytes(self.sink.data[self._read :])
        self._read = len(self.sink.data)
        return self.reader.feed_all(data)

    def publishes(self) -> list[Publish]:
        return [p for p in self.received() if isinstance(p, Publish)]

    @property
    def closed(self) -> bool:
        return self.sink.closed
