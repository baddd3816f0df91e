"""``persistence true``: retained messages and persistent sessions survive a broker restart.

Each scenario runs on mosquitto 2.0.11 first (the expectation) and on m2mhub: the broker is
stopped with SIGTERM (a clean shutdown saves the state) and started again on the same
``persistence_location``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from m2mhub.store.sqlite import PersistenceError, SqliteStore
from tests.interop import raw
from tests.interop.cli import (
    Msg,
    interrupt,
    kill9,
    pub,
    start_sub,
    subscribe_and_leave,
    until_sentinel,
)
from tests.interop.conftest import Broker, start_broker
from tests.interop.raw import RawClient
from tests.interop.test_paho import TIMEOUT, Paho
from tests.support import M2MHUB, free_tcp_port, require

pytestmark = pytest.mark.interop


def _config(tmp_path: Path) -> list[str]:
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    return ["persistence true", f"persistence_location {store}/"]


def _stop(broker: Broker) -> None:
    """SIGTERM, and the broker must exit cleanly (exit code 0)."""
    broker.proc.popen.terminate()
    assert broker.proc.wait(10) == 0, broker.proc.output()


def test_queued_and_retained_messages_survive_a_restart(broker_kind: str, tmp_path: Path) -> None:
    config = _config(tmp_path)
    with start_broker(broker_kind, tmp_path, config) as first:
        sub = start_sub(first.port, "-c", "-i", "keeper", "-q", "1", "-t", "p/#")
        kill9(sub)
        first.wait_log("Client keeper closed its connection")
        pub(first.port, "-t", "p/retained", "-m", "kept", "-r", "-q", "1")
        pub(first.port, "-t", "p/queued", "-m", "one", "-q", "1")
        pub(first.port, "-t", "p/queued", "-m", "two", "-q", "1")
        _stop(first)

    with start_broker(broker_kind, tmp_path, config) as second:
        back = start_sub(second.port, "-c", "-i", "keeper", "-q", "1", "-t", "p/#")
        try:
            got = until_sentinel(second.port, back, "p/sentinel")
        finally:
            interrupt(back)
        assert got == [
            Msg(False, 1, "p/retained", "kept"),
            Msg(False, 1, "p/queued", "one"),
            Msg(False, 1, "p/queued", "two"),
            Msg(True, 1, "p/retained", "kept"),  # the new SUBSCRIBE's retained copy
        ]
        fresh = start_sub(second.port, "-i", "newcomer", "-t", "p/retained")
        try:
            fresh.wait_for_line("MSG|1|0|p/retained|kept")
        finally:
            interrupt(fresh)


def test_a_session_that_expires_while_the_broker_is_down_is_gone(tmp_path: Path) -> None:
    """MQTT 5.0 3.1.2.11.2: the session ends when its expiry interval has passed since the
    connection closed, the broker's downtime included. m2mhub only: mosquitto 2.0.11 restores
    such a session and queues messages for it right after the restart (checked by hand: the
    "brief" subscriber below gets "after restart" there)."""
    broker_kind = "m2mhub"
    config = _config(tmp_path)
    with start_broker(broker_kind, tmp_path, config) as first:
        for client_id, expiry in (("brief", "1"), ("lasting", "600")):
            subscribe_and_leave(
                first.port, "-V", "5", "-c", "-i", client_id, "-x", expiry, "-q", "1", "-t", "e/#"
            )
        _stop(first)
    # The scenario itself: the broker stays down for longer than brief's Session Expiry.
    time.sleep(2.5)
    with start_broker(broker_kind, tmp_path, config) as second:
        pub(second.port, "-t", "e/x", "-m", "after restart", "-q", "1")
        for client_id, expected in (("brief", []), ("lasting", ["after restart"])):
            back = start_sub(
                second.port, "-V", "5", "-c", "-i", client_id, "-x", "600", "-t", "s/" + client_id
            )
            try:
                got = until_sentinel(second.port, back, "s/" + client_id)
            finally:
                interrupt(back)
            assert [m.payload for m in got] == expected, client_id


def test_an_unreadable_persistence_file_stops_start_up(broker_kind: str, tmp_path: Path) -> None:
    """Exit code 1 and "Unrecognised file format", as mosquitto for a file it cannot read; the
    file is left as it was."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "state.db").write_bytes(b"not a persistence file\n" * 10)
    conf = tmp_path / "bad.conf"
    conf.write_text(
        f"listener {free_tcp_port()} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {store}/\npersistence_file state.db\n"
        + ("user root\n" if broker_kind == "mosquitto" else "")
    )
    if broker_kind == "mosquitto":
        args = [require("mosquitto"), "-c", str(conf)]
    else:
        args = [*M2MHUB, "serve", "-c", str(conf), "--no-coap"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert "Unrecognised file format" in done.stdout + done.stderr
    assert (store / "state.db").read_bytes() == b"not a persistence file\n" * 10


def _saves(broker: Broker, path: str, count: int, start: int) -> None:
    """Wait until the broker has logged ``count`` saves of ``path`` since ``start``."""
    needle = f"Saving in-memory database to {path}."
    for _ in range(count):
        line = broker.wait_log(needle, start=start)
        start = broker.proc.lines.index(line, start) + 1


def test_autosave_interval_saves_while_running(broker_kind: str, tmp_path: Path) -> None:
    """The timer saves: a broker killed without a chance to save keeps what the last
    autosave wrote. The second "Saving" line after the publishes means the first save that
    included them has finished."""
    config = [*_config(tmp_path), "autosave_interval 1", "persistence_file state.db"]
    path = f"{tmp_path / 'store'}//state.db"
    with start_broker(broker_kind, tmp_path, config) as first:
        subscribe_and_leave(first.port, "-c", "-i", "crashy", "-q", "1", "-t", "c/#")
        pub(first.port, "-t", "c/q", "-m", "queued", "-q", "1")
        _saves(first, path, 2, first.mark())
        kill9(first.proc)

    with start_broker(broker_kind, tmp_path, config) as second:
        back = start_sub(second.port, "-c", "-i", "crashy", "-q", "1", "-t", "c/#")
        try:
            got = until_sentinel(second.port, back, "c/sentinel")
        finally:
            interrupt(back)
        assert got == [Msg(False, 1, "c/q", "queued")]


def test_autosave_on_changes_counts_changes(broker_kind: str, tmp_path: Path) -> None:
    """With ``autosave_on_changes true``, ``autosave_interval 100`` means "after 100 changes",
    not seconds: messages queued for an offline persistent session count, so 100 publishes
    save well before 100 seconds have passed."""
    config = [*_config(tmp_path), "autosave_interval 100", "autosave_on_changes true"]
    with start_broker(broker_kind, tmp_path, config) as first:
        subscribe_and_leave(first.port, "-c", "-i", "counted", "-q", "1", "-t", "n/#")
        start = first.mark()
        lines = "".join(f"m{n}\n" for n in range(100))
        done = subprocess.run(
            [require("mosquitto_pub"), "-p", str(first.port), "-t", "n/q", "-q", "1", "-l"],
            input=lines,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        suffix = "mosquitto.db" if broker_kind == "mosquitto" else "m2mhub.db"
        _saves(first, f"{tmp_path / 'store'}//{suffix}", 1, start)


def _wait_saved(kind: str, path: Path, timeout: float = 10.0) -> None:
    """Wait until a save has reached the disk: mosquitto writes ``FILE.new`` and renames it,
    m2mhub commits an SQLite transaction (readers see none of it before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kind == "mosquitto" and path.exists():
            return
        if kind == "m2mhub":
            with contextlib.suppress(PersistenceError):
                if SqliteStore(path).load(time.time()) is not None:
                    return
        time.sleep(0.05)
    raise TimeoutError(f"{path} was not saved")


def test_sigusr1_saves_now(broker_kind: str, tmp_path: Path) -> None:
    """``autosave_interval 0``: no timer, but SIGUSR1 saves; the broker is then killed
    without a chance to save again."""
    config = [*_config(tmp_path), "autosave_interval 0", "persistence_file state.db"]
    store = tmp_path / "store"
    with start_broker(broker_kind, tmp_path, config) as first:
        subscribe_and_leave(first.port, "-c", "-i", "signalled", "-q", "1", "-t", "u/#")
        pub(first.port, "-t", "u/q", "-m", "saved by signal", "-q", "1")
        start = first.mark()
        first.proc.popen.send_signal(signal.SIGUSR1)
        _saves(first, f"{store}//state.db", 1, start)
        _wait_saved(broker_kind, store / "state.db")
        kill9(first.proc)

    with start_broker(broker_kind, tmp_path, config) as second:
        back = start_sub(second.port, "-c", "-i", "signalled", "-q", "1", "-t", "u/#")
        try:
            got = until_sentinel(second.port, back, "u/sentinel")
        finally:
            interrupt(back)
        assert got == [Msg(False, 1, "u/q", "saved by signal")]


def test_qos_flows_in_progress_survive_a_restart(broker_kind: str, tmp_path: Path) -> None:
    """Mid-flight at shutdown: an outgoing QoS 1 PUBLISH not acknowledged (resent with DUP), an
    outgoing QoS 2 whose PUBREC came (PUBREL resent), and an inbound QoS 2 not released yet
    (routed once, when its PUBREL comes after the restart)."""
    config = _config(tmp_path)
    with start_broker(broker_kind, tmp_path, config) as first:
        with RawClient(first.port) as sub, RawClient(first.port) as pub_:
            sub.connect("flows-sub", clean=False)
            sub.subscribe([("f/1", 1), ("f/2", 2), ("f/in", 1)])
            pub_.connect("flows-pub", clean=False)
            pub_.send(raw.publish("f/1", b"one", qos=1, pid=1))
            pub_.expect(raw.PUBACK)
            pub_.send(raw.publish("f/2", b"two", qos=2, pid=2))
            pub_.expect(raw.PUBREC)
            pub_.send(raw.ack(raw.PUBREL, 2))
            pub_.expect(raw.PUBCOMP)
            one = sub.expect(raw.PUBLISH).publish_fields()
            two = sub.expect(raw.PUBLISH).publish_fields()
            sub.send(raw.ack(raw.PUBREC, two[1]))
            assert sub.expect(raw.PUBREL).pid() == two[1]
            pub_.send(raw.publish("f/in", b"held", qos=2, pid=3))
            assert pub_.expect(raw.PUBREC).pid() == 3
        _stop(first)

    with (
        start_broker(broker_kind, tmp_path, config) as second,
        RawClient(second.port) as sub,
        RawClient(second.port) as pub_,
    ):
        assert sub.connect("flows-sub", clean=False).body == b"\x01\x00"
        again = sub.expect(raw.PUBLISH)
        assert again.flags & 8, "resent without DUP"
        assert again.publish_fields() == one
        assert sub.expect(raw.PUBREL).pid() == two[1]
        sub.send(raw.ack(raw.PUBACK, one[1]))
        sub.send(raw.ack(raw.PUBCOMP, two[1]))
        assert pub_.connect("flows-pub", clean=False).body == b"\x01\x00"
        pub_.send(raw.ack(raw.PUBREL, 3))
        assert pub_.expect(raw.PUBCOMP).pid() == 3
        pub_.send(raw.publish("f/in", b"end", qos=0))
        got = [p.publish_fields()[2] for p in sub.collect_until(b"end")]
        assert got == [b"held", b"end"]


def test_mqtt5_subscription_options_and_identifier_survive(
    broker_kind: str, tmp_path: Path
) -> None:
    """A 5.0 session's subscription keeps No Local, Retain As Published and its Subscription
    Identifier across the restart (paho-mqtt as the client)."""
    config = _config(tmp_path)
    expiry = Properties(PacketTypes.CONNECT)
    expiry.SessionExpiryInterval = 600
    v5 = MQTTProtocolVersion.MQTTv5
    with start_broker(broker_kind, tmp_path, config) as first:
        sub = Paho(first.port, "opts5", clean_session=False, protocol=v5, properties=expiry)
        sub_props = Properties(PacketTypes.SUBSCRIBE)
        sub_props.SubscriptionIdentifier = 7
        options = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True)
        sub.subscribed.clear()
        sub.client.subscribe("o/#", options=options, properties=sub_props)
        assert sub.subscribed.wait(TIMEOUT), "no SUBACK"
        sub.disconnect()
        _stop(first)

    with start_broker(broker_kind, tmp_path, config) as second:
        sub = Paho(second.port, "opts5", clean_session=False, protocol=v5, properties=expiry)
        other = Paho(second.port, "other5", protocol=v5)
        try:
            assert sub.session_present
            sub.publish("o/own", b"not sent back", 1)  # No Local
            other.publish("o/x", b"flag kept", 1, retain=True)  # Retain As Published
            got = sub.until(other, "o/sentinel")
            assert [(m.payload, m.retain, m.properties.SubscriptionIdentifier) for m in got] == [
                (b"flag kept", True, [7])
            ]
        finally:
            sub.disconnect()
            other.disconnect()
