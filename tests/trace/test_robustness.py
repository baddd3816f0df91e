"""Whatever bytes arrive, the tracer's decoding never raises and never loses or invents a byte:
forwarding can never be disturbed by what it prints."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.mqtt.codec import encode
from m2mhub.mqtt.packets import Connect, Publish
from m2mhub.trace.coap_view import CoapFormatError, parse_coap
from m2mhub.trace.format import PacketFormatter
from m2mhub.trace.mqtt_stream import Frame, MqttConversation

FORMATTERS = [PacketFormatter(style) for style in ("line", "detail", "json")]
CONNECT = encode(Connect(protocol_level=5, client_id="f"), 5)
PUBLISH = encode(Publish("a/b", b"x", 1, packet_id=1, properties={0x26: [("k", "v")]}), 5)


def _render(frames: list[Frame]) -> None:
    for fmt in FORMATTERS:
        for fr in frames:
            if fr.packet is not None:
                fmt.mqtt(fr.packet, when=0, direction="->", conn="c", level=fr.level, raw=fr.raw)
            elif fr.error is not None:
                fmt.malformed(fr.raw, fr.error, when=0, direction="->", conn="c", protocol="mqtt")
            else:
                fmt.raw(fr.raw, when=0, direction="->", conn="c", protocol="mqtt")


@settings(max_examples=300, deadline=None)
@given(
    tail=st.binary(max_size=200),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    from_client=st.booleans(),
)
def test_any_mqtt_stream_is_framed_without_loss(
    tail: bytes, cuts: list[int], from_client: bool
) -> None:
    conv = MqttConversation()
    if not from_client:
        assert conv.from_client.feed(CONNECT)[0].packet is not None  # now the level is known
    data = (PUBLISH if not from_client else CONNECT + PUBLISH) + tail
    direction = conv.from_client if from_client else conv.from_server
    frames: list[Frame] = []
    start = 0
    for cut in [*sorted(c for c in cuts if c < len(data)), len(data)]:
        frames += direction.feed(data[start:cut])
        start = cut
    frames += direction.close()
    assert b"".join(f.raw for f in frames) == data
    assert frames[0].packet is not None  # the valid prefix decodes whatever follows
    _render(frames)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_datagram_parses_or_fails_cleanly(data: bytes) -> None:
    try:
        msg = parse_coap(data)
    except CoapFormatError as exc:
        for fmt in FORMATTERS:
            fmt.malformed(data, exc, when=0, direction="<-", conn="c", protocol="coap")
        return
    for fmt in FORMATTERS:
        fmt.coap(msg, when=0, direction="<-", conn="c", raw=data)
