"""``-D``/``--property COMMAND NAME VALUE``: MQTT 5 properties on the command line, as mosquitto.

COMMAND is the packet (connect, publish, subscribe, unsubscribe, disconnect, will), NAME the
property in mosquitto's spelling (``user-property`` takes two values: name and value). Giving
any ``-D`` switches the client to MQTT 5, as mosquitto's clients do.
"""

from __future__ import annotations

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
    "auth": PacketType.AUTH,
}

NAMES: dict[str, int] = {p.name.lower().replace("_", "-"): int(p) for p in PropertyId}

_INTEGER_TYPES = (
    PropertyType.BYTE,
    PropertyType.TWO_BYTE_INT,
    PropertyType.FOUR_BYTE_INT,
    PropertyType.VARINT,
)
_LIMITS = {
    PropertyType.BYTE: 0xFF,
    PropertyType.TWO_BYTE_INT: 0xFFFF,
    PropertyType.FOUR_BYTE_INT: 0xFFFFFFFF,
    PropertyType.VARINT: 268_435_455,
}


def _atoi(text: str) -> int:
    digits = ""
    for ch in text.strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


class PropertyArgs:
    """The ``-D`` options seen so far, grouped by packet (keys of ``COMMANDS``)."""

    def __init__(self) -> None:
        self.by_command: dict[str, dict[int, object]] = {}

    def __bool__(self) -> bool:
        return bool(self.by_command)

    def get(self, command: str) -> dict[int, object]:
        """The properties for one packet (a fresh dict; empty if none were given)."""
        return dict(self.by_command.get(command, {}))

    def parse(self, args: ArgReader) -> None:
        """Consume ``COMMAND NAME VALUE [VALUE2]`` after ``-D``."""
        remaining = args.argv[args.i :]
        if len(remaining) < 3:
            raise UsageError("--property argument given but not enough arguments specified.")
        command, name = remaining[0], remaining[1]
        packet = COMMANDS.get(command.lower())
        if packet is None:
            raise UsageError("Invalid command given in --property argument.")
        prop_id = NAMES.get(name.lower())
        if prop_id is None:
            raise UsageError("Invalid property name given in --property argument.")
        pdef = PROPERTIES[prop_id]
        if packet not in pdef.allowed:
            raise UsageError(f"{name} property not allowed for {command} in --property argument.")
        if packet == PacketType.AUTH:
            raise UsageError("AUTH properties are not supported yet.", False)
        args.i += 2
        value: object
        if pdef.type is PropertyType.UTF8_PAIR:
            if len(remaining) < 4:
                raise UsageError("--property argument given but not enough arguments specified.")
            value = (args.value("-D", "value"), args.value("-D", "value"))
        else:
            text = args.value("-D", "value")
            if pdef.type in _INTEGER_TYPES:
                number = _atoi(text)
                if number > _LIMITS[pdef.type] or (pdef.valid and number not in pdef.valid):
                    raise UsageError(f"Invalid value for {name} in --property argument.")
                value = number
            elif pdef.type is PropertyType.BINARY:
                value = text.encode("utf-8", "surrogateescape")
            else:
                value = text
        props = self.by_command.setdefault(command.lower(), {})
        if pdef.repeatable or pdef.type is PropertyType.UTF8_PAIR:
            existing = props.setdefault(prop_id, [])
            assert isinstance(existing, list)
            existing.append(value)
        else:
            props[prop_id] = value
