"""Internal subscribers and publish API, $SYS topics, BrokerLog filtering and format."""

from __future__ import annotations

import io
from typing import Any

from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.mqtt.packets import Publish
from tests.hub.harness import Hub


class Collector:
    def __init__(self) -> None:
        self.got: list[tuple[str, bytes, int, bool]] = []

    def deliver(
        self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[int, Any]
    ) -> None:
        self.got.append((topic, payload, qos, retain))


def test_internal_subscriber_receives_mqtt_publishes() -> None:
    hub = Hub()
    col = Collector()
    hub.broker.subscribe_internal("alarm/#", col, 1)
    pub = hub.connected("pub")
    pub.publish_complete("alarm/kitchen", b"ON", 2)
    assert col.got == [("alarm/kitchen", b"ON", 1, False)]
    assert hub.broker.unsubscribe_internal("alarm/#", col)
    pub.publish("alarm/kitchen", b"OFF")
    assert len(col.got) == 1


def test_internal_publish_reaches_mqtt_and_retained_api() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("alarm", 1))
    hub.broker.publish("alarm", b"ON", qos=1, retain=True, now=hub.now)
    hub.broker.flush()
    (msg,) = sub.publishes()
    assert (msg.payload, msg.qos) == (b"ON", 1)
    assert hub.broker.retained("alarm") == (b"ON", 1, {})
    assert hub.broker.clear_retained("alarm")
    assert hub.broker.retained("alarm") is None


def test_sys_topics_published_every_interval() -> None:
    hub = Hub(sys_interval=10)
    watch = hub.connected("watch")
    watch.subscribe(("$SYS/broker/clients/connected", 0), ("$SYS/broker/uptime", 0))
    retained_now = [p.payload for p in watch.pending if isinstance(p, Publish)]
    assert retained_now == []  # nothing published before the first tick
    hub.advance(0)
    got = {p.topic: p.payload for p in watch.publishes()}
    assert got == {"$SYS/broker/clients/connected": b"1", "$SYS/broker/uptime": b"0 seconds"}
    hub.advance(5)
    assert watch.publishes() == []
    hub.advance(5)
    got = {p.topic: p.payload for p in watch.publishes()}
    # Only what changed is published again (as mosquitto does).
    assert got == {"$SYS/broker/uptime": b"10 seconds"}
    late = hub.connected("late")
    late.subscribe(("$SYS/broker/version", 0))
    assert [p.payload for p in late.pending if isinstance(p, Publish)] == [b"m2mhub version 0.1.0"]


def test_sys_not_matched_by_hash() -> None:
    hub = Hub(sys_interval=10)
    everything = hub.connected("all")
    everything.subscribe(("#", 0))
    hub.advance(0)
    assert everything.publishes() == []


def test_log_types_filter_and_timestamps() -> None:
    out = io.StringIO()
    log = BrokerLog(("notice",), [out], clock=lambda: 1795626194.7)
    assert log.notice and not log.debug and not log.subscribe
    log.write("hello")
    assert out.getvalue() == "1795626194: hello\n"
    fmt = BrokerLog(("all",), [out], timestamp_format="%Y", clock=lambda: 0.0)
    assert fmt.debug and fmt.unsubscribe
    out.truncate(0)
    out.seek(0)
    fmt.write("x")
    assert out.getvalue().endswith(": x\n") and out.getvalue()[:4].isdigit()
    assert not BrokerLog(("none",)).error


def test_log_from_settings_verbose_means_all(tmp_path: Any) -> None:
    path = tmp_path / "broker.log"
    settings = BrokerSettings(log_dest=[f"file {path}"], log_types={"error"})
    quiet = BrokerLog.from_settings(settings)
    assert quiet.error and not quiet.notice
    quiet.close()
    loud = BrokerLog.from_settings(settings, verbose=True)
    assert loud.debug and loud.notice
    loud.write("line")
    loud.close()
    assert path.read_text().endswith(": line\n")


def test_hub_log_contains_no_line_twice_for_one_failure() -> None:
    hub = Hub()
    c = hub.connected("c")
    c.send_bytes(b"\x00\x00")
    assert sum("Client c" in line for line in hub.lines) == 1


class Broken:
    def deliver(
        self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[int, Any]
    ) -> None:
        raise ValueError("oops")

    def __repr__(self) -> str:
        return "Broken()"


def test_failing_internal_subscriber_hurts_nobody() -> None:
    hub = Hub()
    hub.broker.subscribe_internal("t", Broken(), 0)
    sub = hub.connected("sub")
    sub.subscribe(("t", 0))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"still", 1)
    assert not pub.closed
    assert [p.payload for p in sub.publishes()] == [b"still"]
    assert "Error: internal subscriber Broken() failed on 't' (ValueError: oops)." in hub.lines


def test_heap_topics_when_the_shell_supplies_a_probe() -> None:
    hub = Hub(sys_interval=10)
    sizes = iter([5000, 3000])
    hub.broker.heap_probe = lambda: next(sizes)
    watch = hub.connected("watch")
    watch.subscribe(("$SYS/broker/heap/+", 0))
    hub.advance(0)
    assert {p.topic: p.payload for p in watch.publishes()} == {
        "$SYS/broker/heap/current": b"5000",
        "$SYS/broker/heap/maximum": b"5000",
    }
    hub.advance(10)
    assert {p.topic: p.payload for p in watch.publishes()} == {"$SYS/broker/heap/current": b"3000"}
