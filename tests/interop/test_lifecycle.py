"""MQTT 5 connection lifecycle on mosquitto and m2mhub alike: server DISCONNECT reason codes,
Session Expiry changed on DISCONNECT, will delay, and messages that expire on the way.

Where m2mhub deliberately differs from mosquitto 2.0.11 (the spec says otherwise or lets the
server say more), the test says so and asserts the spec's behaviour on m2mhub only.
Intervals here are one or two seconds: the brokers count real time, so a test that needs an
interval to pass waits for a log line or a message that proves it has, never for a guess.
"""

from __future__ import annotations

import signal
import struct
import subprocess
import time
import uuid
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.interop import cli, raw
from tests.interop.conftest import Broker, BrokerFactory
from tests.interop.raw import RawClient
from tests.interop.test_mqtt5_properties import TIMEOUT, Client5
from tests.support import require

pytestmark = pytest.mark.interop


def props(*pairs: tuple[int, bytes]) -> bytes:
    """MQTT 5 properties (id, encoded value) with their length prefixed."""
    body = b"".join(bytes([pid]) + value for pid, value in pairs)
    return raw.varint(len(body)) + body


def u32(n: int) -> bytes:
    return struct.pack("!I", n)


def connect5(
    client_id: str,
    *,
    keepalive: int = 60,
    clean: bool = True,
    expiry: int | None = None,
    will: tuple[str, bytes, bytes] | None = None,
) -> bytes:
    """A 5.0 CONNECT; ``will`` is (topic, payload, encoded will properties), QoS 0."""
    flags = 0x02 if clean else 0
    tail = b""
    if will is not None:
        flags |= 0x04
        tail = will[2] + raw.utf8(will[0]) + raw.utf8(will[1])
    connect_props = props((0x11, u32(expiry))) if expiry is not None else b"\x00"
    body = raw.utf8(b"MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive)
    return raw.packet(raw.CONNECT, 0, body + connect_props + raw.utf8(client_id) + tail)


def disconnect5(reason: int = 0, expiry: int | None = None) -> bytes:
    body = bytes([reason]) + (props((0x11, u32(expiry))) if expiry is not None else b"\x00")
    return raw.packet(raw.DISCONNECT, 0, body)


def connected5(port: int, client_id: str, **kw: Any) -> RawClient:
    c = RawClient(port, level=5)
    c.send(connect5(client_id, **kw))
    assert c.expect(raw.CONNACK).body[1] == 0
    return c


def session_present(port: int, client_id: str, expiry: int) -> bool:
    """Reconnect with Clean Start 0 and the same ``expiry``; leave again with DISCONNECT."""
    with RawClient(port, level=5) as c:
        c.send(connect5(client_id, clean=False, expiry=expiry))
        present = bool(c.expect(raw.CONNACK).body[0] & 1)
        c.send(disconnect5())
        c.wait_closed()
    return present


def disconnect_reasons(packets: list[raw.Packet]) -> list[int]:
    return [p.body[0] for p in packets if p.ptype == raw.DISCONNECT]


def watcher(port: int, topic: str = "life/#") -> RawClient:
    w = RawClient(port)
    w.connect(f"watch-{uuid.uuid4().hex[:8]}")
    w.subscribe([(topic, 1)])
    return w


def payloads(w: RawClient, until: bytes) -> list[bytes]:
    return [p.publish_fields()[2] for p in w.collect_until(until)]


def publish_sentinel(port: int, topic: str) -> bytes:
    """Publish a unique QoS 1 message; what a watcher got before it happened before it."""
    sentinel = f"sentinel-{uuid.uuid4().hex[:8]}".encode()
    with RawClient(port) as p:
        p.connect("")
        p.send(raw.publish(topic, sentinel, qos=1))
        p.expect(raw.PUBACK)
        p.send(raw.DISCONNECT_BYTES)
    return sentinel


# ------------------------------------------------------------------ server DISCONNECT


def test_keepalive_timeout(broker: Broker) -> None:
    """MQTT 5.0 3.1.2.10 and 4.13.2: mosquitto 2.0.11 just closes; m2mhub first sends
    DISCONNECT 0x8D (Keep Alive timeout), which the spec defines for this case."""
    mark = broker.mark()
    with connected5(broker.port, "life-ka", keepalive=1) as c:
        seen = c.wait_closed(timeout=15)
    broker.wait_log("Client life-ka has exceeded timeout, disconnecting.", start=mark)
    assert disconnect_reasons(seen) == ([] if broker.kind == "mosquitto" else [0x8D])


def test_server_keep_alive_enforced(make_broker: BrokerFactory) -> None:
    """A 5.0 client asking for keepalive 0 gets Server Keep Alive = max_keepalive and is held to
    it: closed after 1.5 times 10 s of silence (mosquitto checks a little late)."""
    broker = make_broker(["max_keepalive 10"])
    mark = broker.mark()
    with RawClient(broker.port, level=5) as c:
        c.send(connect5("life-ska", keepalive=0))
        connack = c.expect(raw.CONNACK)
        assert connack.body[1] == 0 and b"\x13\x00\x0a" in connack.body
        seen = c.wait_closed(timeout=40)
    broker.wait_log("Client life-ska has exceeded timeout, disconnecting.", start=mark)
    assert disconnect_reasons(seen) == ([] if broker.kind == "mosquitto" else [0x8D])


def test_shutdown(make_broker: BrokerFactory) -> None:
    """SIGTERM: mosquitto 2.0.11 just closes; m2mhub sends DISCONNECT 0x8B (Server shutting
    down) first, as 4.13.2 allows, so that a 5.0 client knows it was not a network failure."""
    broker = make_broker()
    client = Client5(broker.port, "life-sd")
    reasons: list[int] = []
    client.client.on_disconnect = lambda _c, _u, _f, rc, _p: (
        reasons.append(int(rc.value)),
        client.disconnected.set(),
    )
    broker.proc.popen.send_signal(signal.SIGTERM)
    assert client.disconnected.wait(TIMEOUT)
    client.client.loop_stop()
    assert broker.proc.wait(TIMEOUT) == 0
    # paho reports a connection closed without DISCONNECT as 0x80 (Unspecified error).
    assert reasons == ([0x80] if broker.kind == "mosquitto" else [0x8B])


def test_takeover_with_paho(broker: Broker) -> None:
    """MQTT 5.0 3.1.4: the old connection gets DISCONNECT 0x8E (Session taken over);
    mosquitto 2.0.11 just closes it."""
    old = Client5(broker.port, "life-twin")
    reasons: list[int] = []
    old.client.on_disconnect = lambda _c, _u, _f, rc, _p: (
        reasons.append(int(rc.value)),
        old.disconnected.set(),
    )
    new = Client5(broker.port, "life-twin")
    assert old.disconnected.wait(TIMEOUT)
    old.client.loop_stop()
    assert reasons == ([0x80] if broker.kind == "mosquitto" else [0x8E])
    new.disconnect()


# ------------------------------------------------------------------ client DISCONNECT


@pytest.mark.parametrize("at_connect", [None, 0], ids=["absent", "zero"])
def test_session_expiry_set_on_disconnect_after_zero(
    broker: Broker, at_connect: int | None
) -> None:
    """MQTT 5.0 3.14.2.2.2: a protocol error, DISCONNECT 0x82, and the will is sent."""
    with watcher(broker.port) as w:
        will = ("life/will", b"z", b"\x00")
        with connected5(broker.port, "life-z", expiry=at_connect, will=will) as c:
            c.send(disconnect5(0x00, expiry=60))
            assert disconnect_reasons(c.wait_closed()) == [0x82]
        sentinel = publish_sentinel(broker.port, "life/end")
        assert payloads(w, sentinel) == [b"z", sentinel]
    assert not session_present(broker.port, "life-z", 60)


@pytest.mark.parametrize("code", [0x80, 0x83])
def test_disconnect_with_an_error_code_and_the_will(broker: Broker, code: int) -> None:
    """MQTT 5.0 3.14.4: only Normal disconnection (0x00) discards the will, so m2mhub sends it
    after a client's DISCONNECT with an error code; mosquitto 2.0.11 discards it for every
    code but 0x04."""
    with watcher(broker.port) as w:
        with connected5(broker.port, "life-err", will=("life/will", b"err", b"\x00")) as c:
            c.send(disconnect5(code))
            assert c.wait_closed() == []
        sentinel = publish_sentinel(broker.port, "life/end")
        expected = [sentinel] if broker.kind == "mosquitto" else [b"err", sentinel]
        assert payloads(w, sentinel) == expected


def test_session_expiry_zero_on_disconnect_ends_the_session(broker: Broker) -> None:
    with connected5(broker.port, "life-s0", expiry=600) as c:
        c.send(disconnect5(0x00, expiry=0))
        assert c.wait_closed() == []
    assert not session_present(broker.port, "life-s0", 600)


def test_session_expiry_changed_on_disconnect_takes_effect(broker: Broker) -> None:
    """600 -> 1 on DISCONNECT: the session expires after 1 s; 1 -> 600: it does not, although
    a session that kept 1 s (the yardstick) expires meanwhile."""
    mark = broker.mark()
    with connected5(broker.port, "life-short", expiry=600) as c:
        c.send(disconnect5(0x00, expiry=1))
        c.wait_closed()
    with connected5(broker.port, "life-long", expiry=1) as c:
        c.send(disconnect5(0x00, expiry=600))
        c.wait_closed()
    with connected5(broker.port, "life-yardstick", expiry=1) as c:
        c.send(disconnect5())
        c.wait_closed()
    broker.wait_log("Expiring client life-yardstick due to timeout.", start=mark)
    broker.wait_log("Expiring client life-short due to timeout.", start=mark)
    assert not any("life-long" in line for line in broker.lines_since(mark) if "Expir" in line)
    assert not session_present(broker.port, "life-short", 600)
    assert session_present(broker.port, "life-long", 0)


# ------------------------------------------------------------------ will delay


def _delayed_will(payload: bytes, delay: int) -> tuple[str, bytes, bytes]:
    return ("life/will", payload, props((0x18, u32(delay))))


def test_will_delay_then_sent(broker: Broker) -> None:
    with watcher(broker.port) as w:
        c = connected5(broker.port, "life-wd", expiry=60, will=_delayed_will(b"late", 1))
        c.sock.close()
        got = w.collect_until(b"late")
        assert [p.publish_fields()[2] for p in got] == [b"late"]


def test_will_delay_cancelled_by_reconnection(broker: Broker) -> None:
    """The yardstick leaves after the first client with the same delay: when its will is in,
    the first client's would have been too."""
    with watcher(broker.port) as w:
        first = connected5(broker.port, "life-back", expiry=60, will=_delayed_will(b"no", 2))
        first.sock.close()
        with connected5(broker.port, "life-back", clean=False, expiry=60) as back:
            yardstick = connected5(
                broker.port, "life-yard", expiry=60, will=_delayed_will(b"yard", 2)
            )
            yardstick.sock.close()
            assert payloads(w, b"yard") == [b"yard"]
            back.send(disconnect5())


def test_will_sent_when_session_expires_before_the_delay(broker: Broker) -> None:
    """MQTT 5.0 3.1.2.5: the will goes when the delay passes or the session ends, whichever
    is first: here the session (1 s) ends long before the delay (600 s)."""
    mark = broker.mark()
    with watcher(broker.port) as w:
        c = connected5(broker.port, "life-short-will", expiry=1, will=_delayed_will(b"end", 600))
        c.sock.close()
        assert payloads(w, b"end") == [b"end"]
    broker.wait_log("Expiring client life-short-will due to timeout.", start=mark)


def test_disconnect_with_will_message_and_delay(broker: Broker) -> None:
    with watcher(broker.port) as w:
        c = connected5(broker.port, "life-04", expiry=60, will=_delayed_will(b"w04", 1))
        c.send(disconnect5(0x04))
        c.wait_closed()
        sentinel = publish_sentinel(broker.port, "life/end")
        # Not at once: the delay holds it back.
        assert payloads(w, sentinel) == [sentinel]
        assert payloads(w, b"w04") == [b"w04"]


def test_disconnect_0x04_ending_the_session_sends_the_will_at_once(broker: Broker) -> None:
    """Session Expiry 0 on DISCONNECT 0x04 ends the session now, so MQTT 5.0 3.1.2.5 sends the
    will now (m2mhub); mosquitto 2.0.11 still waits for the Will Delay Interval."""
    with watcher(broker.port) as w:
        c = connected5(broker.port, "life-04e", expiry=60, will=_delayed_will(b"now", 1))
        c.send(disconnect5(0x04, expiry=0))
        c.wait_closed()
        sentinel = publish_sentinel(broker.port, "life/end")
        if broker.kind == "m2mhub":
            assert payloads(w, sentinel) == [b"now", sentinel]
        else:
            assert payloads(w, sentinel) == [sentinel]
            assert payloads(w, b"now") == [b"now"]


# ------------------------------------------------------------------ message expiry


def test_queued_message_carries_the_time_left_mosquitto_clients(broker: Broker) -> None:
    """mosquitto_sub -V 5 -F %E shows the interval left after the message waited offline."""
    sub_id = f"life-q-{uuid.uuid4().hex[:6]}"
    session = ("-V", "5", "-c", "-i", sub_id, "-x", "600", "-q", "1", "-t", "life/q")
    cli.subscribe_and_leave(broker.port, *session)
    cli.pub(
        broker.port,
        *("-V", "5", "-q", "1", "-t", "life/q", "-m", "kept"),
        *("-D", "publish", "message-expiry-interval", "60"),
    )
    time.sleep(2.2)  # the message waits at least two whole seconds in the offline queue
    once = ("-C", "1", "-W", "10")  # the queued message arrives even before the SUBACK
    done = subprocess.run(
        [require("mosquitto_sub"), "-p", str(broker.port), *session, *once, "-F", "EXP|%E|%p"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    _, left, payload = done.stdout.strip().split("|")
    assert payload == "kept"
    assert 56 <= int(left) <= 58


def test_in_flight_message_resent_after_it_expired(broker: Broker) -> None:
    """A QoS 1 message sent but not acknowledged before the subscriber left: MQTT 5.0 4.4
    requires the resend on reconnection, even though it expired meanwhile (its delivery had
    started; 3.3.2.3.3 only drops copies not yet sent). m2mhub resends it with Message
    Expiry Interval 1 (0 would mean "never"); mosquitto 2.0.11 drops it."""
    with connected5(broker.port, "life-inflight", expiry=600) as sub:
        sub.send(raw.subscribe(1, [("life/inflight", 1)], level=5))
        sub.expect(raw.SUBACK)
        with connected5(broker.port, "life-inflight-pub") as pub:
            pub.send(
                raw.publish("life/inflight", b"once", qos=1, level=5, props=bytes([0x02]) + u32(1))
            )
            pub.expect(raw.PUBACK)
        assert sub.expect(raw.PUBLISH).publish_fields(5)[2] == b"once"
    time.sleep(2.2)  # at least two whole seconds: the 1 s interval has passed
    with RawClient(broker.port, level=5) as back:
        back.send(connect5("life-inflight", clean=False, expiry=600))
        assert back.expect(raw.CONNACK).body[0] & 1
        back.send(raw.PINGREQ_BYTES)
        got = []
        while (p := back.read()).ptype != raw.PINGRESP:
            got.append(p)
        if broker.kind == "mosquitto":
            assert got == []
        else:
            (resent,) = got
            assert resent.flags & 0x08  # DUP
            assert resent.publish_fields(5)[2] == b"once"
            assert bytes([0x02]) + u32(1) in resent.body
        back.send(disconnect5(0x00, expiry=0))


# ------------------------------------------------------------------ mosquitto clients, paho


def test_session_expiry_with_mosquitto_sub(broker: Broker) -> None:
    """``mosquitto_sub -V 5 -c -x N``: the 1 s session is gone once the broker says it expired,
    the 600 s one kept its subscription and queued what was published meanwhile."""
    mark = broker.mark()
    common = ("-V", "5", "-c", "-q", "1", "-t", "life/ms")
    cli.subscribe_and_leave(broker.port, *common, "-i", "life-ms-1", "-x", "1")
    cli.subscribe_and_leave(broker.port, *common, "-i", "life-ms-600", "-x", "600")
    broker.wait_log("Expiring client life-ms-1 due to timeout.", start=mark)
    cli.pub(broker.port, "-V", "5", "-q", "1", "-t", "life/ms", "-m", "queued")
    for client_id, expected in (("life-ms-600", ["queued"]), ("life-ms-1", [])):
        sub = cli.start_sub(broker.port, *common, "-i", client_id, "-x", "600")
        try:
            got = [m.payload for m in cli.until_sentinel(broker.port, sub, "life/ms")]
        finally:
            cli.interrupt(sub)
        assert got == expected, client_id


def test_will_delay_with_mosquitto_pub(broker: Broker) -> None:
    """``mosquitto_pub -V 5 -D will will-delay-interval 1``, killed: the will comes after the
    delay, not when the connection drops."""
    sub = cli.start_sub(broker.port, "-V", "5", "-q", "1", "-t", "life/mwill")
    mark = broker.mark()
    pub = subprocess.Popen(
        [
            *(require("mosquitto_pub"), "-p", str(broker.port), "-V", "5", "-i", "life-mpub"),
            *("-x", "60", "-l", "-t", "life/x", "--will-topic", "life/mwill"),
            *("--will-payload", "bye", "--will-qos", "1", "-D", "will", "will-delay-interval", "1"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        broker.wait_log("as life-mpub", start=mark)
        pub.kill()
        pub.wait(10)
        broker.wait_log("Client life-mpub closed its connection.", start=mark)
        assert cli.until_sentinel(broker.port, sub, "life/mwill") == []
        sub.wait_for_line("|bye")
    finally:
        if pub.poll() is None:
            pub.kill()
            pub.wait(10)
        assert pub.stdin is not None
        pub.stdin.close()
        cli.interrupt(sub)


def test_will_delay_with_paho(broker: Broker) -> None:
    """paho-mqtt 5.0: a delayed will arrives with its properties, without the delay itself."""
    watch = Client5(broker.port, "life-pw-watch")
    watch.subscribe("life/pwill", 1)
    will_props = Properties(PacketTypes.WILLMESSAGE)
    will_props.WillDelayInterval = 1
    will_props.ContentType = "text/plain"
    dying = Client5(
        broker.port, "life-pw", session_expiry=60, will=("life/pwill", b"bye", 1, False, will_props)
    )
    dying.drop()
    msg = watch.next_message()
    assert msg.payload == b"bye"
    assert msg.properties.ContentType == "text/plain"
    assert not hasattr(msg.properties, "WillDelayInterval")
    watch.disconnect()
