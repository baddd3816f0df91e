"""CoAP codec: golden bytes (some captured from coap-client-notls), round trips, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.coap import options as o
from m2mhub.coap.message import (
    ACK,
    BAD_OPTION,
    CON,
    DROP,
    NON,
    RESET,
    RST,
    CoapDecodeError,
    Message,
    decode,
    describe,
    encode,
)
from m2mhub.coap.options import Code, code_name


def test_get_from_coap_client() -> None:
    # coap-client-notls -m get coap://127.0.0.1:48320/time
    data = bytes.fromhex("4101a7880172bcc04474696d65")
    msg = decode(data)
    assert (msg.mtype, msg.code, msg.mid, msg.token) == (CON, Code.GET, 0xA788, b"\x01")
    assert msg.options == [(o.URI_PORT, 0xBCC0), (o.URI_PATH, "time")]
    assert msg.uri_path() == ("time",)
    assert msg.payload == b""
    assert encode(msg) == data


def test_put_with_payload_from_coap_client() -> None:
    data = bytes.fromhex("4103ba6e0172bcc045616c61726dff4f4e")
    msg = decode(data)
    assert msg.code == Code.PUT
    assert msg.opt.uri_path == ("alarm",)
    assert msg.payload == b"ON"
    assert encode(msg) == data


def test_non_get_root_and_observe_and_query_block() -> None:
    non = decode(bytes.fromhex("5101d90c0172bcc0"))
    assert non.mtype == NON and non.uri_path() == ()
    obs = decode(bytes.fromhex("41012caa016012bcc045616c61726d"))
    assert obs.observe == 0 and obs.options[0] == (o.OBSERVE, 0)
    blk = decode(bytes.fromhex("4101e4930172bcc04362696743783d310672743d6162638102"))
    assert blk.uri_query() == ("x=1", "rt=abc")
    assert blk.query() == {"x": "1", "rt": "abc"}
    assert blk.block2 == (0, False, 2)


def test_hand_checked_response() -> None:
    msg = Message(ACK, Code.CONTENT, 0x1234, b"\xab", content_format=0, payload=b"hi")
    # 0x61: v1 ACK tkl1; 0x45 = 2.05; Content-Format delta 12, length 0 -> 0xc0
    assert encode(msg) == bytes.fromhex("614512 34ab c0 ff 6869".replace(" ", ""))


def test_extended_delta_and_length() -> None:
    msg = Message(CON, Code.GET, 1, b"", uri_path=["a" * 20])
    msg.add(o.PROXY_URI, "coap://h/" + "x" * 300)  # length 309 -> 14 + 40
    msg.add(o.SIZE1, 70000)  # delta 60-11 = 49 -> 13 + 36
    msg.add(2000, b"\x01")  # elective unknown, delta 1940 -> 14 + 1671
    data = encode(msg)
    assert data[4] == 0xBD and data[5] == 20 - 13  # delta 11, length 13+7
    again = decode(data)
    assert again == msg
    assert again.get(2000) == b"\x01"


def test_empty_messages() -> None:
    ping = decode(bytes.fromhex("40000001"))
    assert ping.mtype == CON and ping.is_empty()
    assert encode(Message(RST, 0, 1)) == bytes.fromhex("70000001")


@pytest.mark.parametrize(
    ("hexdata", "action", "reason"),
    [
        ("", DROP, "truncated header"),
        ("4101", DROP, "truncated header"),
        ("810100010b", DROP, "version"),
        ("4901000100000000000000000000", RESET, "token length 9"),
        ("4f01000100", RESET, "token length 15"),
        ("42010001ab", RESET, "truncated token"),
        ("41010001abff", RESET, "payload marker with no payload"),
        ("41010001abb8616c", RESET, "option overruns"),
        ("41010001abd0", RESET, "option overruns"),
        ("41010001abe000", RESET, "option overruns"),
        ("41010001abf0", RESET, "option delta 15"),
        ("41010001ab0f", RESET, "option length 15"),
        ("40000001ab", RESET, "empty message with content"),
        ("50000001", DROP, "empty NON"),
        ("40200001", RESET, "reserved code"),
        ("40e00001", RESET, "reserved code"),
        ("41010001abd10001", BAD_OPTION, "unknown critical option 13"),
        ("40010001d10601", BAD_OPTION, "unknown critical option 19"),  # Q-Block1: unsupported
        ("4001000191ff", BAD_OPTION, "unknown critical option 9"),  # OSCORE: unsupported
        ("40010001bf01ff", RESET, "option length 15"),
        ("40010001e1ffff", RESET, "option overruns"),
        ("40010001e0ffff", RESET, "option number 65804"),
    ],
)
def test_bad_input(hexdata: str, action: str, reason: str) -> None:
    with pytest.raises(CoapDecodeError) as info:
        decode(bytes.fromhex(hexdata))
    assert info.value.action == action
    assert reason in info.value.reason
    if action != DROP:
        assert info.value.mid == 1


def test_invalid_elective_is_dropped_but_invalid_critical_is_bad_option() -> None:
    # Content-Format (12, elective) with 3 bytes: too long -> dropped silently
    msg = decode(bytes.fromhex("40010001" + "c3000000"))
    assert msg.options == []
    # Uri-Path (11, critical) not UTF-8
    with pytest.raises(CoapDecodeError) as info:
        decode(bytes.fromhex("40010001" + "b1ff"))
    assert info.value.action == BAD_OPTION
    # Observe twice (not repeatable, elective): the second one is dropped
    msg = decode(bytes.fromhex("40010001" + "6101" + "0102"))
    assert msg.options == [(o.OBSERVE, 1)]
    # Uri-Host twice (critical, not repeatable): bad option
    with pytest.raises(CoapDecodeError) as info:
        decode(bytes.fromhex("40010001" + "3161" + "0162"))
    assert info.value.action == BAD_OPTION


def test_names_and_describe() -> None:
    assert str(Code.CONTENT) == "2.05 Content"
    assert code_name(132) == "4.04 Not Found"
    assert o.OPTIONS[o.URI_PATH].critical and not o.OPTIONS[o.CONTENT_FORMAT].critical
    assert o.OPTIONS[o.SIZE1].no_cache_key and o.OPTIONS[o.PROXY_URI].unsafe
    line = describe(Message(CON, Code.GET, 0x1A2B, b"\x0c", uri_path=["time"]))
    assert line == "v:1 t:CON c:GET i:1a2b {0c} [ Uri-Path:time ]"
    m = Message(ACK, Code.CONTENT, 1, payload=b"x")
    m.opt.content_format = 0
    m.opt.block2 = o.block_value(1, True, 2)
    assert m.opt.content_format == 0 and m.block2 == (1, True, 2)
    assert "Block2:1/M/64" in describe(m)


_values = {
    o.URI_PATH: st.text(max_size=20),
    o.URI_QUERY: st.text(max_size=20),
    o.CONTENT_FORMAT: st.integers(0, 65535),
    o.OBSERVE: st.integers(0, 2**24 - 1),
    o.ETAG: st.binary(min_size=1, max_size=8),
    o.BLOCK2: st.integers(0, 2**24 - 1),
    o.SIZE1: st.integers(0, 2**32 - 1),
    1000: st.binary(max_size=300),
}
_option = st.sampled_from(sorted(_values)).flatmap(lambda n: _values[n].map(lambda v: (n, v)))


@settings(max_examples=200, deadline=None)
@given(
    mtype=st.sampled_from([CON, NON, ACK, RST]),
    code=st.sampled_from([1, 2, 3, 4, 5, 69, 68, 132, 160]),
    mid=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    opts=st.lists(_option, max_size=8),
    payload=st.binary(max_size=100),
)
def test_round_trip(
    mtype: int, code: int, mid: int, token: bytes, opts: list[tuple[int, object]], payload: bytes
) -> None:
    seen: set[int] = set()
    clean = []
    for n, v in sorted(opts, key=lambda p: p[0]):
        if n in seen and not o.OPTIONS.get(n, o.OPTIONS[o.URI_PATH]).repeatable:
            continue
        seen.add(n)
        clean.append((n, v))
    msg = Message(mtype, code, mid, token, clean, payload)  # type: ignore[arg-type]
    data = encode(msg)
    assert decode(data) == msg
    assert encode(decode(data)) == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_only_raises_decode_error(data: bytes) -> None:
    try:
        msg = decode(data)
    except CoapDecodeError:
        return
    assert encode(msg)  # anything we accept we can write back
