"""The MQTT QoS/persistence lab as runnable experiments.

The lab's procedure is: subscribe (clean session or not), disconnect, publish, reconnect, see
what arrives. :func:`qos_experiments` lists the lab's five tests, then the whole matrix
(publish QoS x subscribe QoS x clean/persistent), the same with the subscriber online, then
retained and will messages. What
should arrive is computed from the specification's rules (:mod:`m2mhub.lab.rules`), never
written per row.

"Nothing arrived" is decided after a barrier: the subscriber publishes to its own barrier
topic and waits for that message to come back, so everything the broker had for it earlier
has been received by then.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from m2mhub.client import MQTTClient, Will
from m2mhub.client.mqtt import Message
from m2mhub.lab import rules
from m2mhub.lab.record import Recording, mqtt_label
from m2mhub.lab.results import Delivery, Outcome
from m2mhub.lab.runner import Progress, run_one
from m2mhub.mqtt.packets import Packet

WAIT_TIMEOUT = 5.0
"""Longest wait for something that must happen (a barrier echo, an expected will)."""
QUIET_WAIT = 0.2
"""Bounded wait for something that must not happen and has no barrier (a will after DISCONNECT)."""


class Lab:
    """Where the experiments run: the broker address and a run id that keeps topics and
    client ids of this run apart from anything else on the broker."""

    def __init__(self, host: str, port: int, protocol: int = 4) -> None:
        self.host = host
        self.port = port
        self.protocol = protocol
        self.run_id = secrets.token_hex(2)

    def topic(self, n: int) -> str:
        return f"lab/{self.run_id}/{n}/test/message"

    def client_id(self, name: str, n: int) -> str:
        return f"{name}-{self.run_id}-{n}"

    def recorded(self, rec: Recording, lane: str) -> Subscriber:
        return Subscriber(self, rec, lane)

    async def forget_session(self, client_id: str) -> None:
        """Connect once with a clean session so a persistent session does not linger."""
        client = MQTTClient()
        await client.connect(self.host, self.port, client_id, protocol=self.protocol)
        await client.disconnect()

    async def clear_retained(self, topic: str) -> None:
        client = MQTTClient()
        await client.connect(self.host, self.port, protocol=self.protocol)
        await client.publish(topic, b"", qos=1, retain=True)
        await client.disconnect()


class Subscriber:
    """An MQTTClient whose packets go into the recording and whose messages are collected."""

    def __init__(self, lab: Lab, rec: Recording, lane: str) -> None:
        self.lab = lab
        self.rec = rec
        self.lane = lane
        self.got: list[Message] = []
        self._arrived = asyncio.Event()
        self._barrier_topic = ""
        self._barrier_seen = asyncio.Event()
        self.client = self._new_client()

    def _new_client(self) -> MQTTClient:
        return MQTTClient(on_message=self._on_message, on_packet=self._on_packet)

    def _on_packet(self, direction: str, packet: Packet, client_id: str) -> None:
        now = asyncio.get_running_loop().time()
        self.rec.packet(
            now, self.lane, direction == "sending", mqtt_label(packet, self.lab.protocol)
        )

    def _on_message(self, message: Message) -> None:
        if message.topic == self._barrier_topic:
            self._barrier_seen.set()
            return
        self.got.append(message)
        self._arrived.set()

    async def connect(self, client_id: str, clean: bool, will: Will | None = None) -> None:
        if self.client.connected:
            raise RuntimeError("already connected")
        self.client = self._new_client()
        self.rec.titles.setdefault(self.lane, client_id)
        self.rec.online(asyncio.get_running_loop().time(), self.lane)
        await self.client.connect(
            self.lab.host,
            self.lab.port,
            client_id,
            clean_session=clean,
            will=will,
            protocol=self.lab.protocol,
            timeout=WAIT_TIMEOUT,
        )

    async def disconnect(self, abort: bool = False) -> None:
        if abort:
            self.client.abort()
            await asyncio.wait_for(self.client.wait_closed(), WAIT_TIMEOUT)
        else:
            await self.client.disconnect()
        reason = "connection lost (no DISCONNECT)" if abort else "offline"
        self.rec.offline(asyncio.get_running_loop().time(), self.lane, reason)

    async def round_trip(self) -> None:
        """Returns once the broker has handled everything this client sent before."""
        await asyncio.wait_for(self.client.subscribe([(self._barrier(), 0)]), WAIT_TIMEOUT)

    async def settle(self) -> None:
        """Returns once everything the broker had for this client has arrived."""
        topic = self._barrier()
        self._barrier_seen.clear()
        await asyncio.wait_for(self.client.subscribe([(topic, 0)]), WAIT_TIMEOUT)
        await asyncio.wait_for(self.client.publish(topic, b"barrier"), WAIT_TIMEOUT)
        await asyncio.wait_for(self._barrier_seen.wait(), WAIT_TIMEOUT)

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` messages arrived (bounded), or a short while when 0 are due."""
        if count == 0:
            await asyncio.sleep(QUIET_WAIT)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_TIMEOUT
        while len(self.got) < count and loop.time() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
            except TimeoutError:
                break

    def deliveries(self, topic: str) -> list[Delivery]:
        return [
            Delivery(m.payload.decode("utf-8", "replace"), m.qos, m.retain)
            for m in self.got
            if m.topic == topic
        ]

    def _barrier(self) -> str:
        self._barrier_topic = f"lab/{self.lab.run_id}/barrier/{self.lane}"
        return self._barrier_topic


Runner = Callable[[Lab, Recording], Awaitable[list[Delivery]]]


@dataclass(slots=True)
class Experiment:
    """One row: its name and settings, the specification's expectation and how to run it."""

    name: str
    settings: str
    expected: list[Delivery]
    why: str
    run: Runner


# ------------------------------------------------------------------------------ procedures


async def offline_publish(
    lab: Lab, rec: Recording, n: int, payload: str, pub_qos: int, sub_qos: int, persistent: bool
) -> list[Delivery]:
    """Subscribe, disconnect, publish, reconnect (subscribing again), see what arrives."""
    topic, sub_id = lab.topic(n), lab.client_id("Sub1", n)
    sub = lab.recorded(rec, "subscriber")
    pub = lab.recorded(rec, "publisher")
    try:
        await sub.connect(sub_id, clean=not persistent)
        await sub.client.subscribe([(topic, sub_qos)])
        await sub.disconnect()
        await pub.connect(lab.client_id("Pub1", n), clean=True)
        await pub.client.publish(topic, payload.encode(), qos=pub_qos)
        await pub.round_trip()
        await pub.disconnect()
        await sub.connect(sub_id, clean=not persistent)
        await sub.client.subscribe([(topic, sub_qos)])
        await sub.settle()
        await sub.disconnect()
    finally:
        if persistent:
            await lab.forget_session(sub_id)
    return sub.deliveries(topic)


async def retained_late(
    lab: Lab, rec: Recording, n: int, payloads: list[str], pub_qos: int, sub_qos: int
) -> list[Delivery]:
    """Publish retained messages (an empty one clears), then a new subscriber subscribes."""
    topic = lab.topic(n)
    pub = lab.recorded(rec, "publisher")
    sub = lab.recorded(rec, "subscriber")
    try:
        await pub.connect(lab.client_id("Pub1", n), clean=True)
        for payload in payloads:
            await pub.client.publish(topic, payload.encode(), qos=pub_qos, retain=True)
        await pub.round_trip()
        await pub.disconnect()
        rec.offline(asyncio.get_running_loop().time(), "subscriber")
        await sub.connect(lab.client_id("Sub1", n), clean=True)
        await sub.client.subscribe([(topic, sub_qos)])
        await sub.settle()
        await sub.disconnect()
    finally:
        await lab.clear_retained(topic)
    return sub.deliveries(topic)


async def live_publish(
    lab: Lab, rec: Recording, n: int, payload: str, pub_qos: int, sub_qos: int, retain: bool
) -> list[Delivery]:
    """A subscriber stays connected while a message (retained or not) is published."""
    topic = lab.topic(n)
    pub = lab.recorded(rec, "publisher")
    sub = lab.recorded(rec, "subscriber")
    try:
        await sub.connect(lab.client_id("Sub1", n), clean=True)
        await sub.client.subscribe([(topic, sub_qos)])
        await pub.connect(lab.client_id("Pub1", n), clean=True)
        await pub.client.publish(topic, payload.encode(), qos=pub_qos, retain=retain)
        await pub.round_trip()
        await pub.disconnect()
        await sub.settle()
        await sub.disconnect()
    finally:
        if retain:
            await lab.clear_retained(topic)
    return sub.deliveries(topic)


async def will_message(
    lab: Lab,
    rec: Recording,
    n: int,
    payload: str,
    will_qos: int,
    sub_qos: int,
    retain: bool,
    crash: bool,
) -> list[Delivery]:
    """A client with a will ends its connection (crashing, or with DISCONNECT); with a
    retained will a late subscriber comes afterwards, else a live subscriber listens."""
    topic = lab.topic(n)
    sub = lab.recorded(rec, "subscriber")
    victim = lab.recorded(rec, "publisher")
    try:
        if not retain:
            await sub.connect(lab.client_id("Sub1", n), clean=True)
            await sub.client.subscribe([(topic, sub_qos)])
        else:
            rec.offline(asyncio.get_running_loop().time(), "subscriber")
        will = Will(topic, payload.encode(), qos=will_qos, retain=retain)
        await victim.connect(lab.client_id("Will1", n), clean=True, will=will)
        await victim.round_trip()
        await victim.disconnect(abort=crash)
        if retain:
            watcher = lab.recorded(Recording(), "watcher")
            await watcher.connect(lab.client_id("Watch1", n), clean=True)
            await watcher.client.subscribe([(topic, 0)])
            await watcher.wait_for(1 if crash else 0)
            await watcher.disconnect()
            await sub.connect(lab.client_id("Sub1", n), clean=True)
            await sub.client.subscribe([(topic, sub_qos)])
        else:
            await sub.wait_for(1 if crash else 0)
        await sub.settle()
        await sub.disconnect()
    finally:
        if retain:
            await lab.clear_retained(topic)
    return sub.deliveries(topic)


# ------------------------------------------------------------------------------ the list

LAB_TESTS = [(1, 0, False, 0), (2, 1, True, 1), (3, 1, True, 0), (4, 0, True, 1), (5, 2, True, 2)]
"""The lab's five tests: (number, subscriber QoS, persistent session, publisher QoS)."""


def _session(persistent: bool) -> str:
    return "persistent" if persistent else "clean"


def qos_experiments() -> list[Experiment]:
    """Every experiment of ``m2mhub lab qos``, in the order they run."""
    out: list[Experiment] = []
    n = 0

    def add(name: str, settings: str, expect: tuple[list[Delivery], str], run: Runner) -> None:
        out.append(Experiment(name, settings, expect[0], expect[1], run))

    def add_offline(name: str, payload: str, pub_qos: int, sub_qos: int, persistent: bool) -> None:
        nonlocal n
        n += 1
        add(
            name,
            f"sub q{sub_qos} {_session(persistent)}, offline; pub q{pub_qos}",
            rules.offline_publish(payload, pub_qos, sub_qos, persistent),
            partial(
                offline_publish,
                n=n,
                payload=payload,
                pub_qos=pub_qos,
                sub_qos=sub_qos,
                persistent=persistent,
            ),
        )

    for number, sub_qos, persistent, pub_qos in LAB_TESTS:
        add_offline(f"lab test {number}", f"MESSAGE {number}", pub_qos, sub_qos, persistent)
    for persistent in (False, True):
        for pub_qos in (0, 1, 2):
            for sub_qos in (0, 1, 2):
                payload = f"MESSAGE {pub_qos}{sub_qos}{'p' if persistent else 'c'}"
                name = f"matrix pub q{pub_qos} sub q{sub_qos}"
                add_offline(name, payload, pub_qos, sub_qos, persistent)
    for pub_qos in (0, 1, 2):
        for sub_qos in (0, 1, 2):
            n += 1
            payload = f"MESSAGE {pub_qos}{sub_qos}o"
            add(
                f"online pub q{pub_qos} sub q{sub_qos}",
                f"sub q{sub_qos} online; pub q{pub_qos}",
                rules.live_publish(payload, pub_qos, sub_qos),
                partial(
                    live_publish,
                    n=n,
                    payload=payload,
                    pub_qos=pub_qos,
                    sub_qos=sub_qos,
                    retain=False,
                ),
            )
    retained_cases = [
        ("retained, late subscriber", ["RETAINED 1"], 1, 1),
        ("retained, late subscriber", ["RETAINED 2"], 2, 0),
        ("retained replaced", ["OLD", "NEW"], 1, 2),
        ("retained cleared", ["GONE", ""], 1, 1),
    ]
    for name, payloads, pub_qos, sub_qos in retained_cases:
        n += 1
        shown = ", ".join(f"'{p}'" for p in payloads)
        add(
            name,
            f"pub q{pub_qos} retained {shown}; then sub q{sub_qos}",
            rules.retained_late(payloads, pub_qos, sub_qos),
            partial(retained_late, n=n, payloads=payloads, pub_qos=pub_qos, sub_qos=sub_qos),
        )
    n += 1
    add(
        "retained, live subscriber",
        "sub q1 online; pub q1 retained 'LIVE'",
        rules.retained_live("LIVE", 1, 1),
        partial(live_publish, n=n, payload="LIVE", pub_qos=1, sub_qos=1, retain=True),
    )
    will_cases = [
        ("will, connection lost", 1, 1, False, True),
        ("will, connection lost", 2, 0, False, True),
        ("will, clean DISCONNECT", 1, 1, False, False),
        ("will retained, late subscriber", 1, 1, True, True),
    ]
    for name, will_qos, sub_qos, retain, crash in will_cases:
        n += 1
        payload = f"WILL {n}"
        ending = "connection lost" if crash else "DISCONNECT"
        add(
            name,
            f"will q{will_qos}{' retained' if retain else ''}, {ending}; sub q{sub_qos}",
            rules.will(payload, will_qos, sub_qos, retain, crash),
            partial(
                will_message,
                n=n,
                payload=payload,
                will_qos=will_qos,
                sub_qos=sub_qos,
                retain=retain,
                crash=crash,
            ),
        )
    return out


async def run_qos(
    host: str, port: int, stream: TextIO | None = None, select: str | None = None
) -> list[Outcome]:
    """Run :func:`qos_experiments` (those whose name contains ``select``) against a broker."""
    lab = Lab(host, port)
    experiments = [e for e in qos_experiments() if not select or select in e.name]
    progress = Progress(stream, len(experiments))
    outcomes = []
    for e in experiments:
        body = partial(e.run, lab)
        outcomes.append(await run_one(e.name, e.settings, e.expected, e.why, body, progress))
    return outcomes
