"""What an experiment saw: every packet between the lanes, with timestamps, and lane gaps.

A sequence diagram and the text trace are both drawn from an :class:`Recording`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from m2mhub.coap.message import Message
from m2mhub.mqtt.packets import Packet
from m2mhub.trace.format import coap_summary, mqtt_summary

LANES = ("publisher", "broker", "subscriber")


@dataclass(slots=True)
class Arrow:
    """One packet: seconds since the experiment began, from lane, to lane, one-line summary."""

    t: float
    src: str
    dst: str
    label: str


@dataclass(slots=True)
class Gap:
    """A lane that was offline (disconnected) from ``start`` to ``end`` (None: until the end)."""

    lane: str
    start: float
    end: float | None = None
    reason: str = "offline"


@dataclass(slots=True)
class Recording:
    """Packets and gaps of one experiment, plus the lane titles (e.g. the client ids)."""

    lanes: tuple[str, ...] = LANES
    titles: dict[str, str] = field(default_factory=dict)
    arrows: list[Arrow] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    origin: float = 0.0

    def packet(self, now: float, lane: str, sent: bool, label: str) -> None:
        """A packet ``lane`` sent to the server (``sent``) or received from it."""
        t = now - self.origin
        server = self.lanes[1]
        self.arrows.append(Arrow(t, lane, server, label) if sent else Arrow(t, server, lane, label))

    def offline(self, now: float, lane: str, reason: str = "offline") -> None:
        """``lane`` has no connection from now on (``reason`` is shown in the diagram)."""
        self.gaps.append(Gap(lane, now - self.origin, reason=reason))

    def online(self, now: float, lane: str) -> None:
        """``lane`` connects again: its open gap ends now."""
        for gap in reversed(self.gaps):
            if gap.lane == lane and gap.end is None:
                gap.end = now - self.origin
                return

    @property
    def duration(self) -> float:
        last = [a.t for a in self.arrows] + [g.start for g in self.gaps]
        last += [g.end for g in self.gaps if g.end is not None]
        return max(last, default=0.0)


def mqtt_label(packet: Packet, level: int | None) -> str:
    """The tracer's one-line summary of an MQTT packet."""
    return mqtt_summary(packet, level)


def coap_label(message: Message) -> str:
    """The tracer's one-line summary of a CoAP message."""
    return coap_summary(message)
