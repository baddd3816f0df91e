"""The hub's CoAP resources (/time, /alarm, /ps/...) over real UDP, in one process.

A real broker core and the CoAP face run on the test's event loop; the MQTT side is reached
through the broker's in-process API (a recording internal subscriber and ``broker.publish``),
so these tests need no TCP and no third-party program.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.client.coap import CoapClient
from m2mhub.coap import options as o
from m2mhub.coap.endpoint import CoapConfig
from m2mhub.coap.message import CON, NON
from m2mhub.coap.options import Code
from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.net.coap_face import CoapFace, start_coap_face


class Recorder:
    """An internal broker subscriber standing in for an MQTT client."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, int]] = []
        self.event = asyncio.Event()

    def deliver(
        self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[int, Any]
    ) -> None:
        self.messages.append((topic, payload, qos))
        self.event.set()


class Hub:
    def __init__(self, broker: Broker, face: CoapFace, client: CoapClient) -> None:
        self.broker = broker
        self.face = face
        self.client = client
        self.port = face.addresses[0][1]

    def uri(self, path: str) -> str:
        return f"coap://127.0.0.1:{self.port}{path}"

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        self.broker.publish(topic, payload, qos, retain, asyncio.get_running_loop().time())


@asynccontextmanager
async def running_hub(config: CoapConfig | None = None) -> AsyncIterator[Hub]:
    loop = asyncio.get_running_loop()
    settings = BrokerSettings(sys_interval=0)
    broker = Broker(settings, BrokerLog((), collect=True), authenticator=None, now=loop.time())
    face = await start_coap_face(broker, [("127.0.0.1", 0)], config=config)
    hub = Hub(broker, face, CoapClient())
    try:
        yield hub
    finally:
        await hub.client.close()
        face.close()
        await face.wait_closed()


def run(test: Callable[[Hub], Awaitable[None]]) -> None:
    async def main() -> None:
        async with running_hub() as hub:
            await asyncio.wait_for(test(hub), 20)

    asyncio.run(main())


def test_time_is_libcoap_shaped_and_ticks_for_observers() -> None:
    async def body(hub: Hub) -> None:
        r = await hub.client.request("GET", hub.uri("/time"))
        assert r.code == Code.CONTENT
        text = r.payload.decode()
        # "Nov 25 17:30:00"
        month, day, clock = text.split(" ")
        assert len(month) == 3 and day.isdigit() and len(clock) == 8 and clock.count(":") == 2
        assert r.get(o.MAX_AGE) == 1
        ticks = await hub.client.request("GET", hub.uri("/time?ticks"))
        assert ticks.payload.isdigit()
        seen: list[int] = []
        async with hub.client.observe(hub.uri("/time")) as obs:
            async for msg in obs:
                assert msg.observe is not None
                seen.append(msg.observe)
                if len(seen) == 3:
                    break
        assert seen == sorted(seen) and len(set(seen)) == 3

    run(body)


def test_alarm_put_reaches_mqtt_and_get_reads_retained_state() -> None:
    async def body(hub: Hub) -> None:
        mqtt = Recorder()
        hub.broker.subscribe_internal("alarm", mqtt, 1)
        assert (await hub.client.request("GET", hub.uri("/alarm"))).payload == b"OFF"
        r = await hub.client.request("PUT", hub.uri("/alarm"), b"ON")
        assert r.code == Code.CHANGED
        assert mqtt.messages == [("alarm", b"ON", 1)]
        assert hub.broker.retained("alarm") is not None
        assert (await hub.client.request("GET", hub.uri("/alarm"))).payload == b"ON"
        bad = await hub.client.request("PUT", hub.uri("/alarm"), b"MAYBE")
        assert bad.code == Code.BAD_REQUEST
        hub.publish("alarm", b"OFF", retain=True)
        assert (await hub.client.request("GET", hub.uri("/alarm"))).payload == b"OFF"

    run(body)


def test_alarm_observers_hear_mqtt_and_coap_changes() -> None:
    async def body(hub: Hub) -> None:
        async with hub.client.observe(hub.uri("/alarm")) as obs:
            first = await obs.__anext__()
            assert first.payload == b"OFF"
            hub.publish("alarm", b"ON", qos=1, retain=True)
            n1 = await obs.__anext__()
            assert n1.payload == b"ON"
            assert n1.mtype == CON  # delivered at QoS 1
            other = CoapClient()
            try:
                await other.request("PUT", hub.uri("/alarm"), b"OFF", confirmable=False)
            finally:
                await other.close()
            n2 = await obs.__anext__()
            assert n2.payload == b"OFF"
            assert n2.mtype == NON  # a NON PUT publishes at QoS 0
            assert n2.observe is not None and n1.observe is not None and n2.observe > n1.observe

    run(body)


def test_ps_get_put_post_delete() -> None:
    async def body(hub: Hub) -> None:
        c = hub.client
        mqtt = Recorder()
        hub.broker.subscribe_internal("sensors/#", mqtt, 2)
        assert (await c.request("GET", hub.uri("/ps/sensors/t1"))).code == Code.NOT_FOUND
        assert (await c.request("PUT", hub.uri("/ps/sensors/t1"), b"21.5")).code == Code.CHANGED
        assert mqtt.messages[-1] == ("sensors/t1", b"21.5", 1)
        got = await c.request("GET", hub.uri("/ps/sensors/t1"))
        assert (got.code, got.payload) == (Code.CONTENT, b"21.5")
        # POST publishes without retaining: the retained value stays.
        assert (await c.request("POST", hub.uri("/ps/sensors/t1"), b"22")).code == Code.CHANGED
        assert mqtt.messages[-1] == ("sensors/t1", b"22", 1)
        assert (await c.request("GET", hub.uri("/ps/sensors/t1"))).payload == b"21.5"
        # Query overrides: POST retained, PUT not retained, explicit QoS.
        await c.request("POST", hub.uri("/ps/sensors/t1?retain=1&qos=2"), b"23")
        assert mqtt.messages[-1] == ("sensors/t1", b"23", 2)
        assert (await c.request("GET", hub.uri("/ps/sensors/t1"))).payload == b"23"
        await c.request("PUT", hub.uri("/ps/sensors/t1?retain=0&qos=0"), b"24")
        assert mqtt.messages[-1] == ("sensors/t1", b"24", 0)
        assert (await c.request("GET", hub.uri("/ps/sensors/t1"))).payload == b"23"
        assert (await c.request("DELETE", hub.uri("/ps/sensors/t1"))).code == Code.DELETED
        assert (await c.request("GET", hub.uri("/ps/sensors/t1"))).code == Code.NOT_FOUND
        # Bad input gets a clear 4.00.
        assert (await c.request("PUT", hub.uri("/ps/a/+"), b"x")).code == Code.BAD_REQUEST
        assert (await c.request("PUT", hub.uri("/ps/a?qos=7"), b"x")).code == Code.BAD_REQUEST
        assert (await c.request("GET", hub.uri("/ps"))).code == Code.NOT_FOUND
        # Content-Format survives the trip through the broker.
        await c.request("PUT", hub.uri("/ps/j"), b"{}", content_format=50)
        assert (await c.request("GET", hub.uri("/ps/j"))).content_format == 50

    run(body)


def test_ps_observe_follows_mqtt_and_coap_publishes_and_unsubscribes() -> None:
    async def body(hub: Hub) -> None:
        topics = hub.face.site.topics
        obs = hub.client.observe(hub.uri("/ps/room/temp"))
        await obs.start()
        first = await obs.__anext__()
        assert (first.code, first.payload) == (Code.CONTENT, b"")  # no retained value yet
        assert list(topics._subscribers) == [("room", "temp")]
        hub.publish("room/temp", b"19")
        n = await obs.__anext__()
        assert (n.payload, n.mtype) == (b"19", NON)
        other = CoapClient()
        await other.request("POST", hub.uri("/ps/room/temp"), b"20")
        await other.close()
        n = await obs.__anext__()
        assert (n.payload, n.mtype) == (b"20", NON)  # QoS 1 publish, capped by the QoS 0 sub
        await obs.cancel(wait=5)
        assert topics._subscribers == {}
        assert topics.observer_count() == 0

    run(body)


def test_ps_observe_with_qos_1_gets_con_notifications_and_wildcards_work() -> None:
    async def body(hub: Hub) -> None:
        async with hub.client.observe(hub.uri("/ps/house/+/temp?qos=1")) as obs:
            assert (await obs.__anext__()).code == Code.CONTENT
            hub.publish("house/kitchen/temp", b"21", qos=1)
            hub.publish("house/hall/light", b"on", qos=1)  # does not match
            hub.publish("house/hall/temp", b"18", qos=0)
            n1 = await obs.__anext__()
            n2 = await obs.__anext__()
            assert (n1.payload, n1.mtype) == (b"21", CON)
            assert (n2.payload, n2.mtype) == (b"18", NON)

    run(body)


def test_plain_get_with_wildcard_is_refused() -> None:
    async def body(hub: Hub) -> None:
        r = await hub.client.request("GET", hub.uri("/ps/house/%23"))
        assert r.code == Code.BAD_REQUEST
        async with hub.client.observe(hub.uri("/ps/house/%23/x")) as obs:
            refused = await obs.__anext__()
            assert refused.code == Code.BAD_REQUEST  # "#" must be the last level
        assert hub.face.site.topics._subscribers == {}

    run(body)


def test_well_known_core_lists_the_hub_resources() -> None:
    async def body(hub: Hub) -> None:
        r = await hub.client.request("GET", hub.uri("/.well-known/core"))
        assert r.content_format == 40
        text = r.payload.decode()
        for link in ("</time>", "</alarm>", "</ps>"):
            assert link in text
        assert 'rt="alarm"' in text and "obs" in text and 'title="Internal Clock"' in text
        filtered = await hub.client.request("GET", hub.uri("/.well-known/core?rt=alarm"))
        assert filtered.payload.decode().startswith("</alarm>")
        assert "</time>" not in filtered.payload.decode()

    run(body)


def test_observer_that_forgot_its_token_is_dropped_on_rst() -> None:
    async def body(hub: Hub) -> None:
        topics = hub.face.site.topics
        obs = hub.client.observe(hub.uri("/ps/forgetful"))
        await obs.start()
        await obs.__anext__()
        assert topics.observer_count() == 1
        # The client forgets the observation without deregistering: the next notification
        # (NON) gets a RST, which ends the observation and the MQTT subscription.
        assert obs.token is None and obs._ex is not None
        hub.client._by_token.pop(obs._ex.token)
        hub.publish("forgetful", b"x")
        for _ in range(100):
            if topics.observer_count() == 0:
                break
            await asyncio.sleep(0.02)
        assert topics.observer_count() == 0
        assert topics._subscribers == {}

    run(body)


def test_large_values_and_notifications_are_reassembled_from_blocks() -> None:
    async def body(hub: Hub) -> None:
        first_value = b"a" * 2500
        hub.publish("big/value", first_value, retain=True)
        got = await hub.client.request("GET", hub.uri("/ps/big/value"), block_size=256)
        assert got.payload == first_value
        async with hub.client.observe(hub.uri("/ps/big/value")) as obs:
            assert (await obs.__anext__()).payload == first_value
            second_value = b"b" * 3000
            hub.publish("big/value", second_value, retain=True)
            assert (await obs.__anext__()).payload == second_value

    run(body)


segment = st.text(
    alphabet=st.characters(blacklist_characters="+#/\x00", blacklist_categories=("Cs",)),
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(
    segments=st.lists(segment, min_size=1, max_size=4).filter(lambda s: any(s)),
    payload=st.binary(min_size=1, max_size=1500),
)
def test_any_topic_and_payload_round_trips_between_coap_and_mqtt(
    segments: list[str], payload: bytes
) -> None:
    topic = "/".join(segments)
    if topic.startswith("$") or len(topic.encode()) > 255 * 4:
        return

    async def body(hub: Hub) -> None:
        mqtt = Recorder()
        hub.broker.subscribe_internal(topic, mqtt, 1)
        path = "/ps/" + "/".join(quote(s, safe="") for s in segments)
        r = await hub.client.request("PUT", hub.uri(path), payload)
        assert r.code == Code.CHANGED
        assert mqtt.messages == [(topic, payload, 1)]
        got = await hub.client.request("GET", hub.uri(path))
        assert (got.code, got.payload) == (Code.CONTENT, payload)

    run(body)


def test_blocks_of_different_values_are_never_mixed() -> None:
    async def body(hub: Hub) -> None:
        retained = b"a" * 3000
        hub.publish("big/mix", retained, retain=True)
        async with hub.client.observe(hub.uri("/ps/big/mix")) as obs:
            assert (await obs.__anext__()).payload == retained
            # A non-retained publish: the notification's first block is "b"s, but a later GET
            # of the topic gives the retained "a"s. The ETags differ, so the client starts
            # over and ends with one whole representation instead of a mix.
            hub.publish("big/mix", b"b" * 3000)
            got = await obs.__anext__()
            assert got.payload == retained
            assert got.observe is not None

    run(body)


def test_etag_validation() -> None:
    async def body(hub: Hub) -> None:
        hub.publish("etag/t", b"value", retain=True)
        first = await hub.client.request("GET", hub.uri("/ps/etag/t"))
        etag = first.get(o.ETAG)
        assert isinstance(etag, bytes) and etag
        same = await hub.client.request("GET", hub.uri("/ps/etag/t"), options=[(o.ETAG, etag)])
        assert (same.code, same.payload) == (Code.VALID, b"")
        hub.publish("etag/t", b"changed", retain=True)
        changed = await hub.client.request("GET", hub.uri("/ps/etag/t"), options=[(o.ETAG, etag)])
        assert (changed.code, changed.payload) == (Code.CONTENT, b"changed")

    run(body)


def test_client_falls_back_to_the_next_address_of_a_name() -> None:
    """A name whose first address has no server (ICMP refused) is tried at its next one, as
    for ``localhost`` giving ::1 to a server on 127.0.0.1 only."""

    async def body(hub: Hub) -> None:
        name = ("dual.test", hub.port)
        hub.client._resolved[name] = [
            (socket.AF_INET6, ("::1", hub.port)),  # nothing listens there: this hub is IPv4
            (socket.AF_INET, ("127.0.0.1", hub.port)),
        ]
        r = await hub.client.request("GET", f"coap://dual.test:{hub.port}/alarm")
        assert r.payload == b"OFF"
        assert hub.client._resolved[name][0][1][0] == "127.0.0.1"  # remembered
        hub.client._resolved[name].reverse()  # ::1 first again: the registration falls back too
        async with hub.client.observe(f"coap://dual.test:{hub.port}/alarm") as obs:
            assert (await obs.__anext__()).payload == b"OFF"

    run(body)
