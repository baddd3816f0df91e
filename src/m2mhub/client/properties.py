"""MQTT 5 properties with names: ``message.properties.content_type`` instead of ``props[0x03]``.

:class:`MQTTProperties` is a ``dict`` keyed by property identifier (what the codec produces and
takes, so it can be passed wherever properties go) whose attributes name every property of the
MQTT 5.0 specification in snake case. An absent property reads as None, except the repeatable
ones: :attr:`~MQTTProperties.user_properties` (an ordered list of ``(name, value)`` pairs,
duplicates kept) and :attr:`~MQTTProperties.subscription_identifiers` (a list of ints), which
read as empty lists. Build properties to send with keywords::

    MQTTProperties(content_type="text/plain", user_properties=[("unit", "celsius")],
                   message_expiry_interval=60)
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

from m2mhub.mqtt.properties import PROPERTIES, PropertyId

T = TypeVar("T")

_ID_BY_NAME: dict[str, int] = {p.name.lower(): int(p) for p in PropertyId}
_PLURALS = {
    "user_properties": int(PropertyId.USER_PROPERTY),
    "subscription_identifiers": int(PropertyId.SUBSCRIPTION_IDENTIFIER),
}


class _Property(Generic[T]):
    """A named, read-only view of one property identifier."""

    __slots__ = ("prop_id",)

    def __init__(self, prop_id: int) -> None:
        self.prop_id = prop_id

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Property[T]: ...
    @overload
    def __get__(self, obj: MQTTProperties, owner: type[Any]) -> T | None: ...
    def __get__(self, obj: MQTTProperties | None, owner: type[Any]) -> _Property[T] | T | None:
        if obj is None:
            return self
        value: T | None = obj.get(self.prop_id)
        return value


class _Repeated(Generic[T]):
    """A repeatable property: a list (a copy), empty when absent."""

    __slots__ = ("prop_id",)

    def __init__(self, prop_id: int) -> None:
        self.prop_id = prop_id

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Repeated[T]: ...
    @overload
    def __get__(self, obj: MQTTProperties, owner: type[Any]) -> list[T]: ...
    def __get__(self, obj: MQTTProperties | None, owner: type[Any]) -> _Repeated[T] | list[T]:
        if obj is None:
            return self
        return list(obj.get(self.prop_id) or ())


_I = PropertyId


class MQTTProperties(dict[int, Any]):
    """MQTT 5 properties by identifier, readable (and buildable) by name.

    ``MQTTProperties(props)`` wraps a ``{identifier: value}`` dict;
    ``MQTTProperties(content_type="a/b", user_properties=[("k", "v")])`` builds one by name
    (``user_properties``/``subscription_identifiers`` take lists). Unknown names raise
    ``TypeError``.
    """

    __slots__ = ()

    def __init__(self, props: dict[int, Any] | None = None, /, **names: Any) -> None:
        super().__init__(props or {})
        for name, value in names.items():
            prop_id = _PLURALS.get(name) or _ID_BY_NAME.get(name)
            if prop_id is None or (PROPERTIES[prop_id].repeatable and name not in _PLURALS):
                raise TypeError(f"unknown MQTT property name {name!r}")
            self[prop_id] = list(value) if name in _PLURALS else value

    # PUBLISH (and will)
    payload_format_indicator = _Property[int](_I.PAYLOAD_FORMAT_INDICATOR)
    message_expiry_interval = _Property[int](_I.MESSAGE_EXPIRY_INTERVAL)
    content_type = _Property[str](_I.CONTENT_TYPE)
    response_topic = _Property[str](_I.RESPONSE_TOPIC)
    correlation_data = _Property[bytes](_I.CORRELATION_DATA)
    topic_alias = _Property[int](_I.TOPIC_ALIAS)
    subscription_identifiers = _Repeated[int](_I.SUBSCRIPTION_IDENTIFIER)
    user_properties = _Repeated[tuple[str, str]](_I.USER_PROPERTY)
    will_delay_interval = _Property[int](_I.WILL_DELAY_INTERVAL)
    # CONNECT / CONNACK / DISCONNECT
    session_expiry_interval = _Property[int](_I.SESSION_EXPIRY_INTERVAL)
    assigned_client_identifier = _Property[str](_I.ASSIGNED_CLIENT_IDENTIFIER)
    server_keep_alive = _Property[int](_I.SERVER_KEEP_ALIVE)
    authentication_method = _Property[str](_I.AUTHENTICATION_METHOD)
    authentication_data = _Property[bytes](_I.AUTHENTICATION_DATA)
    request_problem_information = _Property[int](_I.REQUEST_PROBLEM_INFORMATION)
    request_response_information = _Property[int](_I.REQUEST_RESPONSE_INFORMATION)
    response_information = _Property[str](_I.RESPONSE_INFORMATION)
    server_reference = _Property[str](_I.SERVER_REFERENCE)
    reason_string = _Property[str](_I.REASON_STRING)
    receive_maximum = _Property[int](_I.RECEIVE_MAXIMUM)
    topic_alias_maximum = _Property[int](_I.TOPIC_ALIAS_MAXIMUM)
    maximum_qos = _Property[int](_I.MAXIMUM_QOS)
    retain_available = _Property[int](_I.RETAIN_AVAILABLE)
    maximum_packet_size = _Property[int](_I.MAXIMUM_PACKET_SIZE)
    wildcard_subscription_available = _Property[int](_I.WILDCARD_SUBSCRIPTION_AVAILABLE)
    subscription_identifier_available = _Property[int](_I.SUBSCRIPTION_IDENTIFIER_AVAILABLE)
    shared_subscription_available = _Property[int](_I.SHARED_SUBSCRIPTION_AVAILABLE)

    def __repr__(self) -> str:
        names = {int(p): p.name.lower() for p in PropertyId}
        inner = ", ".join(f"{names.get(k, hex(k))}={v!r}" for k, v in self.items())
        return f"MQTTProperties({inner})"
