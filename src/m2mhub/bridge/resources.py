"""The hub's CoAP resources: ``/time``, ``/alarm`` and the topic bridge ``/ps/{topic...}``.

CoAP and MQTT share one topic space through the broker's in-process API (docs/hub-api.md):

- ``/alarm`` is the lab's alarm.  Its state is the retained message of MQTT topic ``alarm``
  (``OFF`` while there is none); a CoAP PUT publishes (retained) to ``alarm`` and every publish
  on ``alarm``, from MQTT or CoAP, notifies the CoAP observers.
- ``/ps/{topic...}`` is every MQTT topic (segments joined with ``/``).  GET returns the retained
  message (4.04 if none); GET+Observe subscribes, and every publish on the topic is a
  notification; PUT publishes and retains; POST publishes without retaining; DELETE clears the
  retained message.  ``?qos=0|1|2`` and ``?retain=0|1`` override the defaults (QoS 1 for a CON
  request, QoS 0 for a NON one; retained for PUT only).  An Observe request may name an MQTT
  filter (``/ps/sensors/+``) and may ask for a subscription QoS with ``?qos=``; notifications are
  CON for messages delivered at QoS 1/2 and NON (with a regular CON) for QoS 0.
- ``/async?N`` answers after N seconds with a separate response (m2mhub.bridge.delayed).
- ``/time`` ticks each second like libcoap's example server (``Nov 25 17:30:00``, UTC;
  ``?ticks`` gives Unix seconds); the shell calls :meth:`TimeResource.tick` every second.

Nothing here touches a socket, the event loop or a clock: the clocks are passed in.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from m2mhub.bridge.delayed import DelayedResource
from m2mhub.coap import options as o
from m2mhub.coap.message import CON, Message
from m2mhub.coap.options import Code, ContentFormat
from m2mhub.coap.resource import (
    BadRequest,
    NotFound,
    ObservablePrefixResource,
    ObservableResource,
    Resource,
    Site,
)
from m2mhub.hub.broker import Broker
from m2mhub.mqtt.errors import MQTTError
from m2mhub.mqtt.topics import validate_topic_filter

Clock = Callable[[], float]

ALARM_TOPIC: Final = "alarm"
ALARM_STATES: Final = (b"ON", b"OFF")
CONTENT_TYPE_PROPERTY: Final = 3  # MQTT 5 Content Type
REPRESENTATION_CACHE: Final = 4096  # topics whose GET answer is kept ready
CACHED_PAYLOAD_MAX: Final = 4096  # larger values are not kept (at most 16 MiB in the cache)


def _content_type(content_format: int | None) -> dict[int, Any] | None:
    """MQTT 5 properties carrying a CoAP Content-Format as its media type name."""
    if content_format is None:
        return None
    name = o.CONTENT_FORMAT_NAMES.get(content_format)
    return {CONTENT_TYPE_PROPERTY: name} if name is not None else None


def _content_format(properties: dict[int, Any] | None) -> int | None:
    """The CoAP Content-Format for an MQTT message's Content Type property, if registered."""
    if not properties:
        return None
    name = properties.get(CONTENT_TYPE_PROPERTY)
    if not isinstance(name, str):
        return None
    return o.CONTENT_FORMAT_BY_NAME.get(name)


def entity_tag(payload: bytes) -> bytes:
    """A 4-byte ETag for a topic value: blocks of different values never mix unnoticed, and
    a client that has the value gets 2.03 Valid instead of the body again."""
    return hashlib.blake2s(payload, digest_size=4).digest()


def _representation(payload: bytes, properties: dict[int, Any] | None) -> Message:
    return Message(
        code=Code.CONTENT,
        payload=payload,
        content_format=_content_format(properties),
        etag=entity_tag(payload),
    )


def _publish_options(request: Message, retain_default: bool) -> tuple[int, bool]:
    """QoS and retain flag for a publish made by ``request`` (query overrides defaults)."""
    query = request.query()
    qos = 1 if request.mtype == CON else 0
    if "qos" in query:
        qos = _qos(query["qos"])
    retain = retain_default
    if "retain" in query:
        text = query["retain"].lower()
        if text in ("", "1", "true", "yes", "on"):
            retain = True
        elif text in ("0", "false", "no", "off"):
            retain = False
        else:
            raise BadRequest(f"retain must be 0 or 1, not {query['retain']!r}")
    return qos, retain


def _qos(text: str) -> int:
    if text not in ("0", "1", "2"):
        raise BadRequest(f"qos must be 0, 1 or 2, not {text!r}")
    return int(text)


class IndexResource(Resource):
    """``/``: what this server is, as libcoap's example server answers on its root."""

    ct = ContentFormat.TEXT_PLAIN
    title = "General Info"

    TEXT: Final = (
        b"This is m2mhub, a machine-to-machine hub: an MQTT broker and a CoAP server\n"
        b"sharing one topic space. Resources: /time, /alarm, /ps/{topic...}\n"
        b"(see /.well-known/core).\n"
    )

    def render_get(self, request: Message) -> Message:
        return Message(payload=self.TEXT, content_format=0, max_age=0x2FFFF)


class TimeResource(ObservableResource):
    """``/time``: the current time (UTC), observable, one notification per second."""

    rt = "ticks"
    if_ = "clock"
    ct = ContentFormat.TEXT_PLAIN
    title = "Internal Clock"

    def __init__(self, wall_clock: Clock = time.time) -> None:
        super().__init__()
        self.wall_clock = wall_clock

    def render_get(self, request: Message) -> Message:
        now = self.wall_clock()
        if "ticks" in request.query():
            text = str(int(now))
        else:
            text = time.strftime("%b %d %H:%M:%S", time.gmtime(now))
        return Message(payload=text.encode("ascii"), content_format=0, max_age=1)

    def tick(self) -> None:
        """Notify the observers (the shell calls this at each full second)."""
        if self.observer_count(()):
            self.updated_state()


class _TopicSubscriber:
    """An internal broker subscriber that turns each matching publish into a notification."""

    __slots__ = ("resource", "subpath", "topic_filter")

    def __init__(
        self, resource: ObservableResource, topic_filter: str, subpath: tuple[str, ...]
    ) -> None:
        self.resource = resource
        self.topic_filter = topic_filter
        self.subpath = subpath

    def deliver(
        self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[int, Any]
    ) -> None:
        # QoS 1/2 subscriptions get CON notifications; QoS 0 follows the engine's policy
        # (NON, with a CON every so often so that vanished observers are noticed).
        self.resource.updated_state(
            _representation(payload, properties), self.subpath, True if qos > 0 else None
        )


class AlarmResource(ObservableResource):
    """``/alarm``: ON/OFF, kept as the retained message of MQTT topic ``alarm``."""

    rt = "alarm"
    ct = ContentFormat.TEXT_PLAIN
    title = "Alarm (MQTT topic alarm)"

    def __init__(self, broker: Broker, clock: Clock, topic: str = ALARM_TOPIC) -> None:
        super().__init__()
        self.broker = broker
        self.clock = clock
        self.topic = topic
        self._subscriber = _AlarmSubscriber(self)
        broker.subscribe_internal(topic, self._subscriber, 2)

    @property
    def state(self) -> bytes:
        retained = self.broker.retained(self.topic)
        return retained[0] if retained is not None and retained[0] else b"OFF"

    def render_get(self, request: Message) -> Message:
        return Message(payload=self.state, content_format=0)

    def render_put(self, request: Message) -> Message:
        value = request.payload.strip().upper()
        if value not in ALARM_STATES:
            raise BadRequest("the alarm is ON or OFF")
        qos, retain = _publish_options(request, retain_default=True)
        # Observers hear about it through the broker, like every MQTT subscriber.
        self.broker.publish(self.topic, value, qos, retain, self.clock(), _content_type(0))
        return Message(code=Code.CHANGED)

    def close(self) -> None:
        self.broker.unsubscribe_internal(self.topic, self._subscriber)


class _AlarmSubscriber:
    __slots__ = ("resource",)

    def __init__(self, resource: AlarmResource) -> None:
        self.resource = resource

    def deliver(
        self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[int, Any]
    ) -> None:
        resource = self.resource
        if resource.observer_count(()):
            state = payload or b"OFF"
            resource.updated_state(
                Message(code=Code.CONTENT, payload=state, content_format=0),
                (),
                True if qos > 0 else None,
            )


def _has_wildcard(topic: str) -> bool:
    return "+" in topic or "#" in topic


class TopicResource(ObservablePrefixResource):
    """``/ps/{topic...}``: every MQTT topic, readable, writable and observable over CoAP."""

    rt = "core.ps"
    title = "MQTT topics: /ps/{topic}"

    def __init__(self, broker: Broker, clock: Clock) -> None:
        super().__init__()
        self.broker = broker
        self.clock = clock
        self._subscribers: dict[tuple[str, ...], _TopicSubscriber] = {}
        self._wanted_qos: dict[tuple[str, ...], int] = {}
        self._representations: dict[str, tuple[bytes, Message]] = {}

    @staticmethod
    def topic_of(request: Message) -> str:
        path = request.remaining_path
        if not path:
            raise NotFound("no topic: use /ps/{topic}")
        return "/".join(path)

    def render_get(self, request: Message) -> Message:
        topic = self.topic_of(request)
        observing = request.observe == 0
        wildcard = _has_wildcard(topic)
        if observing:
            try:
                validate_topic_filter(topic)  # what the subscription will use
            except MQTTError as e:
                raise BadRequest(str(e) or "invalid topic filter") from None
            self._note_qos(request)
        elif wildcard:
            raise BadRequest("wildcards only with Observe")
        if wildcard:
            return Message(code=Code.CONTENT)
        retained = self.broker.retained(topic)
        if retained is None:
            if observing:
                # An error would refuse the observation (RFC 7641 3.2): an empty 2.05 keeps it
                # and the first publish is the first real value.
                return Message(code=Code.CONTENT)
            raise NotFound("no retained message")
        # The engine copies what a handler returns, so one representation per retained value
        # serves every GET until the value changes (the stored payload object is the key).
        payload = retained[0]
        cached = self._representations.get(topic)
        if cached is not None and cached[0] is payload:
            return cached[1]
        msg = _representation(payload, retained[2])
        if len(payload) <= CACHED_PAYLOAD_MAX:  # bounded memory even for big values
            if len(self._representations) >= REPRESENTATION_CACHE:
                self._representations.clear()
            self._representations[topic] = (payload, msg)
        return msg

    def _note_qos(self, request: Message) -> None:
        """``?qos=`` on a registration raises the subscription QoS of that path."""
        query = request.query()
        if "qos" not in query:
            return
        qos = _qos(query["qos"])
        path = request.remaining_path
        wanted = self._wanted_qos[path] = max(qos, self._wanted_qos.get(path, 0))
        sub = self._subscribers.get(path)
        if sub is not None:
            self.broker.subscribe_internal(sub.topic_filter, sub, wanted)

    def _publish(self, request: Message, retain_default: bool) -> Message:
        topic = self.topic_of(request)
        if _has_wildcard(topic):
            raise BadRequest("cannot publish to a topic filter")
        qos, retain = _publish_options(request, retain_default)
        try:
            self.broker.publish(
                topic,
                request.payload,
                qos,
                retain,
                self.clock(),
                _content_type(request.content_format),
            )
        except MQTTError as e:
            raise BadRequest(str(e) or "invalid topic name") from None
        return Message(code=Code.CHANGED)

    def render_put(self, request: Message) -> Message:
        return self._publish(request, retain_default=True)

    def render_post(self, request: Message) -> Message:
        return self._publish(request, retain_default=False)

    def render_delete(self, request: Message) -> Message:
        topic = self.topic_of(request)
        if _has_wildcard(topic):
            raise BadRequest("cannot delete a topic filter")
        self.broker.clear_retained(topic)
        return Message(code=Code.DELETED)

    def observation_changed(self, subpath: tuple[str, ...], count: int) -> None:
        """Subscribe to the topic when it gains its first observer, unsubscribe after the last."""
        sub = self._subscribers.get(subpath)
        if count and sub is None:
            topic_filter = "/".join(subpath)
            sub = _TopicSubscriber(self, topic_filter, subpath)
            self._subscribers[subpath] = sub
            try:
                self.broker.subscribe_internal(topic_filter, sub, self._wanted_qos.get(subpath, 0))
            except MQTTError:
                del self._subscribers[subpath]
        elif not count:
            self._wanted_qos.pop(subpath, None)
            if sub is not None:
                del self._subscribers[subpath]
                self.broker.unsubscribe_internal(sub.topic_filter, sub)

    def link_paths(self) -> Sequence[tuple[str, ...]]:
        return ((),)

    def close(self) -> None:
        for sub in self._subscribers.values():
            self.broker.unsubscribe_internal(sub.topic_filter, sub)
        self._subscribers.clear()


class HubSite(Site):
    """The hub's :class:`Site`, with handles on the resources the shell drives."""

    def __init__(self, broker: Broker, clock: Clock, wall_clock: Clock = time.time) -> None:
        super().__init__()
        self.index = IndexResource()
        self.time = TimeResource(wall_clock)
        self.alarm = AlarmResource(broker, clock)
        self.topics = TopicResource(broker, clock)
        self.add_resource((), self.index)
        self.add_resource(("async",), DelayedResource())
        self.add_resource(("time",), self.time)
        self.add_resource(("alarm",), self.alarm)
        self.add_resource(("ps",), self.topics)

    def close(self) -> None:
        """Remove the internal broker subscriptions."""
        self.alarm.close()
        self.topics.close()


def build_hub_site(
    broker: Broker, clock: Clock = time.monotonic, wall_clock: Clock = time.time
) -> HubSite:
    """The hub's CoAP resources over ``broker``.

    ``clock`` is the broker's clock (the event loop's ``loop.time``, which is monotonic);
    ``wall_clock`` feeds ``/time``.  Serve it with
    ``await start_coap_server(build_hub_site(broker), [("127.0.0.1", 5683), ("::1", 5683)])``,
    or let :func:`m2mhub.net.coap_face.start_coap_face` do that and tick ``/time``.
    """
    return HubSite(broker, clock, wall_clock)


__all__ = [
    "AlarmResource",
    "HubSite",
    "Resource",
    "TimeResource",
    "TopicResource",
    "build_hub_site",
]
