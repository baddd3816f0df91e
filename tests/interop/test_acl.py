"""``acl_file``: one ACL file, mosquitto and m2mhub alike, with paho-mqtt, mosquitto_pub/sub
and raw 3.1.1/5.0 clients.

What mosquitto 2.0.11 does, and so do we: SUBSCRIBE is granted whatever the filter (the file
is not consulted for filters); each message is checked against the receiver's read access
when it is delivered (retained ones on subscribe too); a denied PUBLISH gets 0x87 in its
PUBACK/PUBREC in 5.0 and a plain ack in 3.1.1, is dropped, and is logged as ``Denied PUBLISH``
instead of ``Received PUBLISH``; a will to a topic its client may not write to is not sent
(the CONNECT is accepted); no client publishes to ``$SYS`` (bar bridge state topics), ACL
file or not.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.interop import raw
from tests.interop.cli import Msg, interrupt, parse, start_sub
from tests.interop.conftest import Broker, BrokerFactory, start_broker
from tests.interop.test_log_lines import by_client, normalise
from tests.interop.test_paho import Paho
from tests.support import M2MHUB, Proc, free_tcp_port, require

pytestmark = pytest.mark.interop

ACL = """\
# anonymous clients
topic read pub/#
topic write in/#
topic deny in/secret
topic readwrite both/#
topic read $SYS/broker/uptime

# every client
pattern readwrite dev/%c/#
pattern read u/%u/#
pattern deny dev/%c/private
pattern read x/pre-%c

user writer
topic write #

user spy
topic read #
topic write both/done

user bob
topic readwrite bob/#
topic deny bob/secret
topic read dev/bob/private
topic read both/done
"""

DENIED = "Not authorized"


@pytest.fixture
def acl_broker(make_broker: BrokerFactory, tmp_path: Path) -> Broker:
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    return make_broker([f"acl_file {acl}"])


def mosquitto_pub(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("mosquitto_pub"), "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=20,
    )


def write(port: int, topic: str, payload: str = "m", *args: str) -> None:
    """Publish as ``writer`` (who may write anywhere but ``$SYS``)."""
    done = mosquitto_pub(port, "-u", "writer", "-t", topic, "-m", payload, "-q", "1", *args)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def received_until_sentinel(port: int, proc: Proc) -> list[Msg]:
    """Messages ``proc`` got before a QoS 2 sentinel on ``both/done`` (which anonymous
    clients, ``spy`` and ``bob`` may read)."""
    sentinel = f"SENTINEL-{uuid.uuid4().hex[:8]}"
    write(port, "both/done", sentinel, "-q", "2")
    proc.wait_for_line("|" + sentinel)
    msgs = parse(proc.output().splitlines())
    return msgs[: next(i for i, m in enumerate(msgs) if m.payload == sentinel)]


# ---------------------------------------------------------------------- PUBLISH


@pytest.mark.parametrize("version", ["5", "311"])
@pytest.mark.parametrize("qos", ["1", "2"])
def test_denied_publish_mosquitto_pub(acl_broker: Broker, version: str, qos: str) -> None:
    spy = start_sub(acl_broker.port, "-u", "spy", "-V", version, "-t", "#", "-q", "2")
    try:
        done = mosquitto_pub(
            acl_broker.port, "-V", version, "-q", qos, "-t", "in/secret", "-m", "x"
        )
        assert done.returncode == 0
        # 5.0 tells the publisher; 3.1.1 has no way to, and the message just vanishes.
        expected = f"Warning: Publish 1 failed: {DENIED}.\n" if version == "5" else ""
        assert done.stderr == expected
        assert received_until_sentinel(acl_broker.port, spy) == []
    finally:
        interrupt(spy)


def test_denied_publish_paho_v5_reason_codes_and_log_lines(acl_broker: Broker) -> None:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="p5", protocol=MQTTProtocolVersion.MQTTv5
    )
    codes: dict[int, Any] = {}
    done = threading.Event()

    def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        codes[mid] = reason
        if len(codes) == 2:
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", acl_broker.port)
    client.loop_start()
    try:
        mark = acl_broker.mark()
        denied = client.publish("in/secret", b"x", 1)
        allowed = client.publish("in/ok", b"y", 1)
        assert done.wait(10)
        assert codes[denied.mid] == DENIED and codes[denied.mid].value == 0x87
        assert codes[allowed.mid].value < 0x80
        acl_broker.barrier()
        lines = acl_broker.lines_since(mark)
    finally:
        client.disconnect()
        client.loop_stop()
    denied_line = f"Denied PUBLISH from p5 (d0, q1, r0, m{denied.mid}, 'in/secret', ... (1 bytes))"
    assert lines.count(denied_line) == 1
    assert lines[lines.index(denied_line) + 1] == f"Sending PUBACK to p5 (m{denied.mid}, rc135)"
    assert not any("Received PUBLISH" in line and "in/secret" in line for line in lines)
    assert f"Received PUBLISH from p5 (d0, q1, r0, m{allowed.mid}, 'in/ok', ... (1 bytes))" in (
        lines
    )


def test_denied_publish_paho_v311_is_acknowledged(acl_broker: Broker) -> None:
    client = Paho(acl_broker.port, "p3")
    try:
        client.publish("in/secret", b"x", 1)  # PUBACK, as for any other publish
        client.publish("pub/x", b"x", 2)  # anonymous may read pub/#, not write it
    finally:
        client.disconnect()


@pytest.mark.parametrize("level", [4, 5])
def test_denied_qos2_publish_raw_pubrec(acl_broker: Broker, level: int) -> None:
    with raw.RawClient(acl_broker.port, level) as c:
        assert c.connect("q2").body[-1 if level == 4 else 1] == 0
        c.send(raw.publish("pub/x", b"x", qos=2, pid=8, level=level))
        rec = c.expect(raw.PUBREC)
        assert rec.body == (b"\x00\x08\x87" if level == 5 else b"\x00\x08")


@pytest.mark.parametrize("level", [4, 5])
def test_clients_never_publish_to_sys(make_broker: BrokerFactory, level: int) -> None:
    """No ACL file at all: mosquitto still refuses ``$SYS`` (and ``$share``) topic names."""
    broker = make_broker()
    with raw.RawClient(broker.port, level) as c:
        assert c.connect("sysw").ptype == raw.CONNACK
        for pid, topic in enumerate(["$SYS/broker/fake", "$share/g/x"], start=1):
            c.send(raw.publish(topic, b"x", qos=1, pid=pid, level=level))
            assert c.expect(raw.PUBACK).body[2:] == (b"\x87" if level == 5 else b"")
        c.send(raw.publish("$SYS/broker/connection/sysw/state", b"1", qos=1, pid=9, level=level))
        ack = c.expect(raw.PUBACK).body
        assert ack[2:3] < b"\x80"  # allowed (mosquitto adds 0x10, no matching subscribers)
    broker.barrier()
    assert "Denied PUBLISH from sysw (d0, q1, r0, m1, '$SYS/broker/fake', ... (1 bytes))" in (
        broker.lines_since(0)
    )


# ---------------------------------------------------------------------- SUBSCRIBE and reads


@pytest.mark.parametrize("level", [4, 5])
def test_subscribe_is_granted_and_reads_are_checked_per_message(
    acl_broker: Broker, level: int
) -> None:
    with raw.RawClient(acl_broker.port, level) as c:
        c.connect("anon1")
        suback = c.subscribe([("#", 1), ("in/secret", 1), ("bob/#", 0)])
        # mosquitto 2.0.11's ACL file does not check filters: every one is granted.
        assert suback.body[-3:] == b"\x01\x01\x00"
        for topic in [
            "pub/1",
            "in/1",
            "in/secret",
            "both/1",
            "bob/1",
            "dev/anon1/1",
            "dev/anon1/private",
            "dev/other/1",
            "x/pre-anon1",
            "u/anon1/1",
        ]:
            write(acl_broker.port, topic)
        write(acl_broker.port, "both/done", "END")
        got = [p.publish_fields(level)[0] for p in c.collect_until(b"END")]
    assert got == ["pub/1", "both/1", "dev/anon1/1", "x/pre-anon1", "both/done"]


@pytest.mark.parametrize("version", ["5", "311"])
def test_user_section_before_patterns(acl_broker: Broker, version: str) -> None:
    sub = start_sub(acl_broker.port, "-u", "bob", "-i", "bob", "-V", version, "-t", "#")
    try:
        for topic in ["bob/1", "bob/secret", "dev/bob/x", "dev/bob/private", "u/bob/x", "pub/1"]:
            write(acl_broker.port, topic)
        got = [m.topic for m in received_until_sentinel(acl_broker.port, sub)]
    finally:
        interrupt(sub)
    # bob's own "topic read dev/bob/private" is decided before the pattern's deny.
    assert got == ["bob/1", "dev/bob/x", "dev/bob/private", "u/bob/x"]


@pytest.mark.parametrize("version", ["5", "311"])
def test_retained_messages_are_filtered_on_subscribe(acl_broker: Broker, version: str) -> None:
    for topic in ["pub/r", "in/r", "both/r", "bob/r"]:
        write(acl_broker.port, topic, "kept", "-r")
    sub = start_sub(acl_broker.port, "-V", version, "-t", "#")
    try:
        got = received_until_sentinel(acl_broker.port, sub)
    finally:
        interrupt(sub)
    assert sorted((m.topic, m.retain) for m in got) == [("both/r", True), ("pub/r", True)]


def test_sys_topics_need_their_own_read_rule(make_broker: BrokerFactory, tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    broker = make_broker(["sys_interval 1", f"acl_file {acl}"])
    sub = start_sub(broker.port, "-t", "$SYS/#", "-t", "both/done")
    try:
        sub.wait_for_line("|$SYS/broker/uptime|")
        got = received_until_sentinel(broker.port, sub)
    finally:
        interrupt(sub)
    assert {m.topic for m in got} == {"$SYS/broker/uptime"}


def test_dangerous_client_id_is_refused_by_patterns(acl_broker: Broker) -> None:
    sub = start_sub(acl_broker.port, "-i", "d+x", "-t", "#")
    try:
        mark = acl_broker.mark()
        write(acl_broker.port, "in/1")  # no topic rule lets it be read: the patterns decide
        write(acl_broker.port, "pub/1")  # a topic rule does, the name does not matter
        got = [m.topic for m in received_until_sentinel(acl_broker.port, sub)]
    finally:
        interrupt(sub)
    assert got == ["pub/1"]
    line = 'ACL denying access to client with dangerous client id "d+x"'
    assert line in acl_broker.lines_since(mark)


# ---------------------------------------------------------------------- wills


@pytest.mark.parametrize(
    "protocol", [MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5], ids=["3.1.1", "5.0"]
)
def test_denied_will_is_not_sent(acl_broker: Broker, protocol: MQTTProtocolVersion) -> None:
    spy = start_sub(acl_broker.port, "-u", "spy", "-t", "#")
    try:
        will = ("pub/will", b"w1", 1, False)
        denied = Paho(acl_broker.port, "wd", will=will, protocol=protocol)
        will = ("both/will", b"w2", 1, False)
        allowed = Paho(acl_broker.port, "wo", will=will, protocol=protocol)
        assert denied.reason == 0 and allowed.reason == 0  # CONNACK accepts both
        denied.drop()
        allowed.drop()
        got = received_until_sentinel(acl_broker.port, spy)
    finally:
        interrupt(spy)
    assert [(m.topic, m.payload) for m in got] == [("both/will", "w2")]


# ---------------------------------------------------------------------- reload


def test_sighup_reloads_the_acl_file(make_broker: BrokerFactory, tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read t\n")
    broker = make_broker([f"acl_file {acl}"])
    args = ["-V", "5", "-q", "1", "-t", "t", "-m", "x"]
    assert mosquitto_pub(broker.port, *args).stderr == f"Warning: Publish 1 failed: {DENIED}.\n"
    acl.write_text("topic readwrite t\n")
    mark = broker.mark()
    broker.proc.popen.send_signal(signal.SIGHUP)
    broker.wait_log("Reloading config.", start=mark)
    broker.barrier()  # the reload is done once a later client got through
    assert mosquitto_pub(broker.port, *args).stderr == ""


# ---------------------------------------------------------------------- SUBACK reason codes


def test_syntactically_invalid_filter_in_v5(make_broker: BrokerFactory) -> None:
    """Neither broker answers SUBACK 0x8F for a filter that breaks the wildcard rules: the
    client is disconnected. mosquitto says 0x81 (malformed packet); m2mhub says 0x8F (topic
    filter invalid), the codec's choice for every invalid filter."""
    broker = make_broker()
    with raw.RawClient(broker.port, 5) as c:
        c.connect("badfilter")
        c.send(raw.subscribe(1, [("ok/x", 0), ("a/#/b", 0)], level=5))
        seen = c.wait_closed()
    assert [(p.ptype, p.body[:1]) for p in seen] == [
        (raw.DISCONNECT, b"\x81" if broker.kind == "mosquitto" else b"\x8f")
    ]


@pytest.mark.parametrize("level", [4, 5])
def test_denied_publish_log_lines_match_mosquitto(tmp_path: Path, level: int) -> None:
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    logs = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path, [f"acl_file {acl}"]) as broker:
            with raw.RawClient(broker.port, level) as c, raw.RawClient(broker.port) as spy:
                spy.connect("spy", username="spy")
                spy.subscribe([("in/#", 0)])  # someone to receive in/ok (else mosquitto: rc16)
                c.connect("p9q")
                c.send(raw.publish("in/secret", b"q0", level=level))
                c.send(raw.publish("in/secret", b"q1", qos=1, pid=1, level=level))
                c.expect(raw.PUBACK)
                c.send(raw.publish("pub/x", b"q2", qos=2, pid=2, level=level))
                c.expect(raw.PUBREC)
                c.send(raw.publish("in/ok", b"ok", qos=1, pid=3, level=level))
                c.expect(raw.PUBACK)
                c.send(raw.DISCONNECT_BYTES)
                c.wait_closed()
            broker.wait_log("Client p9q disconnected.")
            lines = [normalise(line) for line in broker.lines_since(0)]
            logs[kind] = by_client(lines, ["p9q"])["p9q"]
    assert logs["mosquitto"][2:] == [
        "Denied PUBLISH from p9q (d0, q0, r0, m0, 'in/secret', ... (2 bytes))",
        "Denied PUBLISH from p9q (d0, q1, r0, m1, 'in/secret', ... (2 bytes))",
        "Sending PUBACK to p9q (m1, rc135)",
        "Denied PUBLISH from p9q (d0, q2, r0, m2, 'pub/x', ... (2 bytes))",
        "Sending PUBREC to p9q (m2, rc135)",
        "Received PUBLISH from p9q (d0, q1, r0, m3, 'in/ok', ... (2 bytes))",
        "Sending PUBACK to p9q (m3, rc0)",
        "Received DISCONNECT from p9q",
        "Client p9q disconnected.",
    ]
    assert logs["m2mhub"] == logs["mosquitto"]


def test_user_without_a_section_has_only_the_patterns(acl_broker: Broker) -> None:
    with raw.RawClient(acl_broker.port, 5) as c:
        c.connect("carol1", username="carol")
        c.subscribe([("#", 0)])
        for topic in ["pub/1", "both/1", "u/carol/1", "dev/carol1/1"]:
            write(acl_broker.port, topic)
        write(acl_broker.port, "dev/carol1/end", "END")
        got = [p.publish_fields(5)[0] for p in c.collect_until(b"END")]
    # The anonymous lines (pub/#, both/#) are for clients without a user name only.
    assert got == ["u/carol/1", "dev/carol1/1", "dev/carol1/end"]


@pytest.mark.parametrize(
    "text",
    ["topic read a/#\ntopic frob b\n", " # indented comment\n", "user\n", "topic read a+\n"],
    ids=["access-type", "indented-comment", "no-user-name", "bad-filter"],
)
def test_bad_acl_file_stops_both_brokers_with_exit_3(tmp_path: Path, text: str) -> None:
    acl = tmp_path / "acl"
    acl.write_text(text)
    conf = tmp_path / "bad.conf"
    conf.write_text(f"listener {free_tcp_port()} 127.0.0.1\nuser root\nacl_file {acl}\n")
    for args in ([require("mosquitto"), "-c", str(conf)], [*M2MHUB, "serve", "-c", str(conf)]):
        done = subprocess.run(args, capture_output=True, text=True, timeout=20)
        assert done.returncode == 3, (args[0], done.stdout, done.stderr)
    assert f"Error: {acl}:" in done.stderr  # ours names the line
