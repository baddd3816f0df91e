"""``-D``/``--property COMMAND NAME VALUE``: MQTT 5 properties on the command line, as mosquitto.

COMMAND is the packet (connect, publish, subscribe, unsubscribe, disconnect, will; any case),
NAME the property in mosquitto's spelling (``user-property`` takes two values: name and value).
Giving ``-D`` switches the client to MQTT 5 (a later ``-V`` still wins), as mosquitto's clients
do. Every refusal, its wording and its order follow mosquitto_pub/sub 2.0.11's client_props.c
and the property checks it runs once the whole command line is read (:meth:`PropertyArgs.check`).

Two deliberate differences, where mosquitto goes on to send a packet the specification (and
its own broker) refuses: ``-D will reason-string`` (no Reason String in will properties) and a
string of exactly 65,536 bytes (sent with a length of 0). Both are refused up front.
"""

from __future__ import annotations

import re

from m2mhub.cli._args import ArgReader, UsageError
from m2mhub.mqtt.packets import PacketType
from m2mhub.mqtt.properties import PROPERTIES, WILL, PropertyId, PropertyType

COMMANDS: dict[str, int] = {
    "connect": PacketType.CONNECT,
    "publish": PacketType.PUBLISH,
    "subscribe": PacketType.SUBSCRIBE,
    "unsubscribe": PacketType.UNSUBSCRIBE,
    "disconnect": PacketType.DISCONNECT,
    "will": WILL,
}
"""The packets a ``-D`` option can give properties to (the keys of :class:`PropertyArgs`)."""

# Packets mosquitto knows by name but its clients never send properties in.
_NOT_SUPPORTED = {
    "auth": PacketType.AUTH,
    "puback": PacketType.PUBACK,
    "pubrec": PacketType.PUBREC,
    "pubrel": PacketType.PUBREL,
    "pubcomp": PacketType.PUBCOMP,
}
_CONNACK = "connack"  # known too, refused without a message (mosquitto's quirk)

NAMES: dict[str, int] = {p.name.lower().replace("_", "-"): int(p) for p in PropertyId}

# mosquitto's property type numbers, which its "Error adding property" message shows.
_MOSQ_TYPE = {
    PropertyType.BYTE: 1,
    PropertyType.TWO_BYTE_INT: 2,
    PropertyType.FOUR_BYTE_INT: 3,
    PropertyType.VARINT: 4,
    PropertyType.BINARY: 5,
    PropertyType.UTF8: 6,
    PropertyType.UTF8_PAIR: 7,
}
_LIMITS = {
    PropertyType.BYTE: 0xFF,
    PropertyType.TWO_BYTE_INT: 0xFFFF,
    PropertyType.FOUR_BYTE_INT: 0xFFFFFFFF,
    PropertyType.VARINT: 0xFFFFFFFF,  # checked again when added: at most 268,435,455
}
_VARINT_MAX = 268_435_455
_LONG_MAX = 2**63 - 1

# What mosquitto's UTF-8 check refuses besides invalid UTF-8: U+0000, control characters and
# non-characters (the codec refuses the same on the wire).
_BAD_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
    + "]"
)

# mosquitto_strerror() texts for the errors mosquitto_property_check_all() returns.
_PROTOCOL_ERROR = "A network protocol error occurred when communicating with the broker."
_DUPLICATE = "Duplicate property in property list"
# Properties whose value 0 mosquitto_property_check_all() refuses, and those above 1.
_NONZERO = (
    PropertyId.RECEIVE_MAXIMUM,
    PropertyId.TOPIC_ALIAS,
    PropertyId.MAXIMUM_PACKET_SIZE,
)
_FLAGS = (
    PropertyId.REQUEST_PROBLEM_INFORMATION,
    PropertyId.REQUEST_RESPONSE_INFORMATION,
)
# The order mosquitto's clients check the lists in, with the names their messages use.
_CHECK_ORDER = (
    ("connect", "CONNECT"),
    ("publish", "PUBLISH"),
    ("subscribe", "SUBSCRIBE"),
    ("unsubscribe", "UNSUBSCRIBE"),
    ("disconnect", "DISCONNECT"),
    ("will", "Will"),
)


def _atol(text: str) -> int:
    """C ``atol``: optional blanks and sign, then leading digits; 0 when none."""
    match = re.match(r"\s*([+-]?)(\d*)", text)
    assert match is not None
    digits = match.group(2)
    if not digits:
        return 0
    value = int(digits)
    if match.group(1) == "-":
        return max(-value, -_LONG_MAX - 1)
    return min(value, _LONG_MAX)


def _valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")  # command-line bytes that are not UTF-8 arrive as surrogates
    except UnicodeEncodeError:
        return False
    return _BAD_CHARS.search(text) is None and len(text.encode("utf-8")) <= 0xFFFF


class PropertyArgs:
    """The ``-D`` options seen so far, grouped by packet (keys of ``COMMANDS``), in order."""

    def __init__(self) -> None:
        self.by_command: dict[str, dict[int, object]] = {}
        # Every (command, property id) in the order given: mosquitto checks duplicates on this.
        self._given: dict[str, list[tuple[int, object]]] = {}

    def __bool__(self) -> bool:
        return bool(self.by_command)

    def get(self, command: str) -> dict[int, object]:
        """The properties for one packet (a fresh dict; empty if none were given)."""
        return dict(self.by_command.get(command, {}))

    def parse(self, args: ArgReader) -> None:
        """Consume ``COMMAND NAME VALUE [VALUE2]`` after ``-D``."""
        remaining = args.argv[args.i :]
        not_enough = UsageError("--property argument given but not enough arguments specified.\n")
        if len(remaining) < 3:
            raise not_enough
        command, name = remaining[0], remaining[1]
        key = command.lower()
        if key not in COMMANDS and key not in _NOT_SUPPORTED and key != _CONNACK:
            raise UsageError("Invalid command given in --property argument.\n")
        prop_id = NAMES.get(name.lower())
        if prop_id is None:
            raise UsageError("Invalid property name given in --property argument.\n")
        pdef = PROPERTIES[prop_id]
        packet = COMMANDS.get(key, _NOT_SUPPORTED.get(key, PacketType.CONNACK))
        if packet not in pdef.allowed:
            raise UsageError(f"{name} property not allowed for {command} in --property argument.\n")
        if pdef.type is PropertyType.UTF8_PAIR and len(remaining) < 4:
            raise not_enough
        if key == _CONNACK:
            raise UsageError("", prefix=False)
        if key in _NOT_SUPPORTED or (
            packet == PacketType.PUBLISH and prop_id == PropertyId.SUBSCRIPTION_IDENTIFIER
        ):
            raise UsageError(
                f"{name} property not supported for {command} in --property argument.\n"
            )
        args.i += 2
        value = self._value(name, pdef.type, args)
        props = self.by_command.setdefault(key, {})
        self._given.setdefault(key, []).append((prop_id, value))
        if pdef.repeatable:
            existing = props.setdefault(prop_id, [])
            assert isinstance(existing, list)
            existing.append(value)
        else:
            props.setdefault(prop_id, value)  # a duplicate is refused by check()

    @staticmethod
    def _value(name: str, ptype: PropertyType, args: ArgReader) -> object:
        adding_failed = UsageError(
            f"Error adding property {name} {_MOSQ_TYPE[ptype]}", prefix=False
        )
        text = args.value("-D", "value")
        if ptype in _LIMITS:
            number = _atol(text)
            if number < 0 or number > _LIMITS[ptype]:
                raise UsageError(f"Property value ({number}) out of range for property {name}.\n")
            if ptype is PropertyType.VARINT and number > _VARINT_MAX:
                raise adding_failed
            return number
        if ptype is PropertyType.BINARY:
            data = text.encode("utf-8", "surrogateescape")
            if len(data) > 0xFFFF:
                raise UsageError(f"Property value too long for property {name}.\n")
            return data
        if ptype is PropertyType.UTF8_PAIR:
            second = args.value("-D", "value")
            if not (_valid_utf8(text) and _valid_utf8(second)):
                raise adding_failed
            return (text, second)
        if not _valid_utf8(text):
            raise adding_failed
        return text

    def add_session_expiry(self, interval: int) -> None:
        """``-x``, or ``-c`` alone: appended to the CONNECT properties, as mosquitto does."""
        self.by_command.setdefault("connect", {}).setdefault(
            PropertyId.SESSION_EXPIRY_INTERVAL, interval
        )
        self._given.setdefault("connect", []).append((PropertyId.SESSION_EXPIRY_INTERVAL, interval))

    def check(self) -> None:
        """mosquitto_property_check_all() on each list: zero values, then duplicates."""
        for key, label in _CHECK_ORDER:
            given = self._given.get(key, [])
            for n, (prop_id, value) in enumerate(given):
                if (prop_id in _NONZERO and value == 0) or (
                    prop_id in _FLAGS and isinstance(value, int) and value > 1
                ):
                    raise UsageError(
                        f"Error in {label} properties: {_PROTOCOL_ERROR}", prefix=False
                    )
                later = (other for other, _ in given[n + 1 :])
                if prop_id != PropertyId.USER_PROPERTY and prop_id in later:
                    raise UsageError(f"Error in {label} properties: {_DUPLICATE}", prefix=False)
