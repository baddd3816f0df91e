"""The CoAP message layer and request dispatch, driven with a fake clock (no sockets)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.coap import options as o
from m2mhub.coap.endpoint import CoapConfig
from m2mhub.coap.linkformat import parse_link_format
from m2mhub.coap.message import ACK, CON, NON, RST, Message, encode
from m2mhub.coap.options import Code

from .helpers import CLIENT, OTHER, make_endpoint, take, take_raw


def req(
    code: int = Code.GET,
    path: str = "counter",
    mid: int = 1,
    token: bytes = b"\x0c",
    mtype: int = CON,
    **kw: object,
) -> bytes:
    segs = [s for s in path.split("/") if s]
    return encode(Message(mtype, code, mid, token, uri_path=segs, **kw))  # type: ignore[arg-type]


def test_get_is_piggybacked_in_the_ack() -> None:
    ep, _, _res = make_endpoint()
    ep.datagram_received(req(mid=0x1234), CLIENT)
    [(msg, peer)] = take(ep)
    assert peer == CLIENT
    assert (msg.mtype, msg.code, msg.mid, msg.token) == (ACK, Code.CONTENT, 0x1234, b"\x0c")
    assert msg.payload == b"1" and msg.content_format == 0


def test_non_request_gets_non_response_with_new_mid() -> None:
    ep, _, _ = make_endpoint()
    ep.datagram_received(req(mtype=NON, mid=5), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.mtype == NON and msg.code == Code.CONTENT and msg.mid != 5
    assert msg.token == b"\x0c"


def test_not_found_method_not_allowed_and_default_codes() -> None:
    ep, _, _ = make_endpoint()
    ep.datagram_received(req(path="nope", mid=1), CLIENT)
    ep.datagram_received(req(Code.DELETE, mid=2), CLIENT)
    ep.datagram_received(req(Code.PUT, path="alarm", mid=3, payload=b"ON"), CLIENT)
    ep.datagram_received(encode(Message(CON, 9, 4, b"", uri_path=["counter"])), CLIENT)
    codes = [m.code for m, _ in take(ep)]
    assert codes == [
        Code.NOT_FOUND,
        Code.METHOD_NOT_ALLOWED,
        Code.CHANGED,
        Code.METHOD_NOT_ALLOWED,
    ]


def test_duplicate_con_gets_the_same_ack_and_runs_the_handler_once() -> None:
    ep, _, res = make_endpoint()
    ep.datagram_received(req(mid=77), CLIENT)
    first = take_raw(ep)
    ep.datagram_received(req(mid=77), CLIENT)
    assert take_raw(ep) == first
    assert res["counter"].calls == 1
    # same mid from another peer is another request
    ep.datagram_received(req(mid=77), OTHER)
    [(msg, _)] = take(ep)
    assert msg.payload == b"2"
    assert ep.stats["duplicates"] == 1


def test_dedup_memory_is_bounded() -> None:
    ep, clock, _ = make_endpoint(CoapConfig(dedup_capacity=1000))
    for i in range(10_000):
        ep.datagram_received(req(mid=i & 0xFFFF), ("127.0.0.1", 1000 + i))
        ep.outbox.clear()
        assert len(ep._dd_cur) + len(ep._dd_old) <= 1000
    # and entries expire by age too
    clock.now += 300
    ep.datagram_received(req(mid=1), CLIENT)
    clock.now += 300
    ep.datagram_received(req(mid=2), CLIENT)
    assert len(ep._dd_cur) + len(ep._dd_old) <= 2


def test_ping_is_answered_with_rst() -> None:
    ep, _, _ = make_endpoint()
    ep.datagram_received(bytes.fromhex("4000abcd"), CLIENT)
    assert take_raw(ep) == [bytes.fromhex("7000abcd")]


def test_bad_input_gets_what_rfc7252_says_and_the_server_keeps_serving() -> None:
    ep, _, _ = make_endpoint()
    cases = {
        "41": [],  # truncated header: silent drop
        "81010001": [],  # version 2: silent drop
        "4901000100000000000000000000": ["70000001"],  # token length 9, CON: RST
        "5f010001": [],  # token length 15, NON: silent drop
        "41010001abff": ["70000001"],  # payload marker without payload: RST
        "41010001abb8616c": ["70000001"],  # option overrun: RST
        "60000001": [],  # empty ACK for nothing: ignored
        "70000001": [],  # RST for nothing: ignored
        "61010001ab": [],  # ACK carrying a request: ignored
    }
    for hexdata, expected in cases.items():
        ep.datagram_received(bytes.fromhex(hexdata), CLIENT)
        assert [d.hex() for d in take_raw(ep)] == expected, hexdata
    # unknown critical option (number 13) in a CON request: piggybacked 4.02
    ep.datagram_received(bytes.fromhex("41010002ab" + "d10001"), CLIENT)
    [(msg, _)] = take(ep)
    assert (msg.mtype, msg.code, msg.mid, msg.token) == (ACK, Code.BAD_OPTION, 2, b"\xab")
    # ... in a NON request: NON 4.02
    ep.datagram_received(bytes.fromhex("51010003ab" + "d10001"), CLIENT)
    [(msg, _)] = take(ep)
    assert (msg.mtype, msg.code, msg.token) == (NON, Code.BAD_OPTION, b"\xab")
    # ... in a CON response: RST
    ep.datagram_received(bytes.fromhex("41450004ab" + "d10001"), CLIENT)
    assert take_raw(ep) == [bytes.fromhex("70000004")]
    # unknown elective option: ignored, request served
    ep.datagram_received(
        req(path="", mid=5, options=[(o.URI_PATH, "counter"), (1000, b"x")]), CLIENT
    )
    [(msg, _)] = take(ep)
    assert msg.code == Code.CONTENT
    assert ep.stats["bad"] >= 10


def test_oversize_body_is_413_with_size1() -> None:
    ep, _, _ = make_endpoint(CoapConfig(max_body_size=100))
    ep.datagram_received(req(Code.POST, payload=b"x" * 101), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.code == Code.REQUEST_ENTITY_TOO_LARGE and msg.get(o.SIZE1) == 100
    ep.datagram_received(req(Code.POST, mid=2, payload=b"x" * 100, content_format=0), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.code == Code.CHANGED and msg.payload == b"100"


def test_content_format_accept_etag_and_preconditions() -> None:
    ep, _, _ = make_endpoint()
    ep.datagram_received(req(Code.POST, mid=1, payload=b"{}", content_format=50), CLIENT)
    ep.datagram_received(req(mid=2, accept=50), CLIENT)
    ep.datagram_received(req(mid=3, accept=0), CLIENT)
    ep.datagram_received(req(path="alarm", mid=4, etag=b"e-OFF"), CLIENT)
    ep.datagram_received(req(path="alarm", mid=5, etag=b"e-ON"), CLIENT)
    out = take(ep)
    assert [m.code for m, _ in out] == [
        Code.UNSUPPORTED_CONTENT_FORMAT,
        Code.NOT_ACCEPTABLE,
        Code.CONTENT,
        Code.VALID,
        Code.CONTENT,
    ]
    assert out[3][0].payload == b"" and out[3][0].get(o.ETAG) == b"e-OFF"
    alarm = ep.site.lookup(("alarm",))[0]  # type: ignore[union-attr]
    alarm.etag = b"v1"
    ep.datagram_received(req(Code.PUT, "alarm", mid=6, payload=b"A", options=[(5, b"")]), CLIENT)
    ep.datagram_received(req(Code.PUT, "alarm", mid=7, payload=b"A", options=[(1, b"v0")]), CLIENT)
    ep.datagram_received(req(Code.PUT, "alarm", mid=8, payload=b"A", options=[(1, b"v1")]), CLIENT)
    assert [m.code for m, _ in take(ep)] == [
        Code.PRECONDITION_FAILED,
        Code.PRECONDITION_FAILED,
        Code.CHANGED,
    ]


def test_well_known_core_lists_resources_and_filters() -> None:
    ep, _, _ = make_endpoint()
    ep.datagram_received(req(path=".well-known/core", mid=1), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.content_format == 40
    links = dict(parse_link_format(msg.payload.decode()))
    assert links["/alarm"] == {"rt": "alarm", "ct": 0, "title": "The lab alarm", "obs": True}
    assert "/counter" in links and "/big" in links
    ep.datagram_received(req(path=".well-known/core", mid=2, uri_query=["rt=al*"]), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.payload == b'</alarm>;rt="alarm";ct=0;title="The lab alarm";obs'
    ep.datagram_received(req(path=".well-known/core", mid=3, uri_query=["href=/co*"]), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.payload == b'</counter>;rt="counter"'


def test_slow_handler_gets_empty_ack_then_separate_con_response() -> None:
    ep, clock, res = make_endpoint()
    ep.datagram_received(req(path="slow", mid=9, token=b"tk"), CLIENT)
    assert take(ep) == []
    [(awaitable, done)] = ep.deferred
    ep.deferred.clear()
    deadline = ep.next_deadline()
    assert deadline is not None and abs(deadline - (clock.now + 0.1)) < 1e-9
    clock.now += 0.1
    ep.handle_timer()
    [(ack, _)] = take(ep)
    assert (ack.mtype, ack.code, ack.mid) == (ACK, 0, 9)
    # a retransmitted request now gets the empty ACK again
    ep.datagram_received(req(path="slow", mid=9, token=b"tk"), CLIENT)
    assert [m.code for m, _ in take(ep)] == [0]
    it = awaitable.__await__()
    it.send(None)  # still waiting
    res["slow"].gate.open(b"done")
    try:
        it.send(None)
        raise AssertionError("should have finished")
    except StopIteration as stop:
        done(stop.value, None)
    [(resp, _)] = take(ep)
    assert (resp.mtype, resp.code, resp.token, resp.payload) == (CON, Code.CONTENT, b"tk", b"done")
    assert resp.mid is not None and ep.next_deadline() is not None
    ep.datagram_received(encode(Message(ACK, 0, resp.mid)), CLIENT)
    assert ep.next_deadline() is None


def test_fast_async_handler_is_piggybacked() -> None:
    ep, _, res = make_endpoint()
    res["slow"].gate.open(b"ready")
    ep.datagram_received(req(path="slow", mid=3), CLIENT)
    [(msg, _)] = take(ep)
    assert (msg.mtype, msg.payload) == (ACK, b"ready")
    assert ep.deferred == []


def test_block2_download_with_client_block_size() -> None:
    ep, _, res = make_endpoint()
    data = res["big"].data
    ep.datagram_received(req(path="big", mid=1), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.block2 == (0, True, 6) and msg.get(o.SIZE2) == 3072 and msg.payload == data[:1024]
    got = b""
    for num in range(100):
        block = o.block_value(num, False, 2)
        ep.datagram_received(req(path="big", mid=10 + num, options=[(o.BLOCK2, block)]), CLIENT)
        [(msg, _)] = take(ep)
        assert msg.block2 is not None
        n, more, szx = msg.block2
        assert (n, szx) == (num, 2)
        got += msg.payload
        if not more:
            break
    assert got == data
    ep.datagram_received(
        req(path="big", mid=999, options=[(o.BLOCK2, o.block_value(48, False, 2))]), CLIENT
    )
    [(msg, _)] = take(ep)
    assert msg.code == Code.BAD_OPTION


def test_block1_upload_continue_incomplete_and_too_large() -> None:
    ep, _, res = make_endpoint(CoapConfig(max_body_size=200))
    body = bytes(range(150))
    for num, start in enumerate(range(0, 150, 64)):
        chunk = body[start : start + 64]
        more = start + 64 < 150
        opts = [(o.URI_PATH, "counter"), (o.BLOCK1, o.block_value(num, more, 2))]
        ep.datagram_received(req(Code.POST, "", mid=num + 1, options=opts, payload=chunk), CLIENT)
        [(msg, _)] = take(ep)
        if more:
            assert msg.code == Code.CONTINUE and msg.block1 == (num, True, 2)
        else:
            assert msg.code == Code.CHANGED and msg.block1 == (num, False, 2)
    assert res["counter"].body == body
    # a block out of sequence
    opts = [(o.URI_PATH, "counter"), (o.BLOCK1, o.block_value(3, True, 2))]
    ep.datagram_received(req(Code.POST, "", mid=20, options=opts, payload=bytes(64)), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.code == Code.REQUEST_ENTITY_INCOMPLETE
    # too large in total
    codes = []
    for num in range(5):
        opts = [(o.URI_PATH, "counter"), (o.BLOCK1, o.block_value(num, True, 2))]
        ep.datagram_received(
            req(Code.POST, "", mid=30 + num, options=opts, payload=bytes(64)), CLIENT
        )
        codes += [m.code for m, _ in take(ep)]
    assert codes[:3] == [Code.CONTINUE] * 3 and codes[3] == Code.REQUEST_ENTITY_TOO_LARGE
    # Size1 announcing too much is refused up front
    opts = [(o.URI_PATH, "counter"), (o.BLOCK1, o.block_value(0, True, 2)), (o.SIZE1, 5000)]
    ep.datagram_received(req(Code.POST, "", mid=40, options=opts, payload=bytes(64)), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.code == Code.REQUEST_ENTITY_TOO_LARGE and msg.get(o.SIZE1) == 200


def test_handler_exception_is_500_and_coap_error_maps_to_its_code() -> None:
    from m2mhub.coap import NotFound, Resource

    class Broken(Resource):
        def render_get(self, request: Message) -> Message:
            raise RuntimeError("boom")

        def render_put(self, request: Message) -> Message:
            raise NotFound("no such thing")

    ep, _, _ = make_endpoint()
    assert ep.site is not None
    ep.site.add_resource(("broken",), Broken())
    ep.datagram_received(req(path="broken", mid=1), CLIENT)
    ep.datagram_received(req(Code.PUT, path="broken", mid=2), CLIENT)
    out = take(ep)
    assert [m.code for m, _ in out] == [Code.INTERNAL_SERVER_ERROR, Code.NOT_FOUND]
    assert out[1][0].payload == b"no such thing"
    assert RST == 3  # keep the import honest


def test_a_cached_response_message_is_never_modified() -> None:
    from m2mhub.coap import Resource

    cached = Message(payload=bytes(3000))

    class Cached(Resource):
        def render_get(self, request: Message) -> Message:
            return cached

        def render_put(self, request: Message) -> Message:
            return cached

    ep, _, _ = make_endpoint()
    assert ep.site is not None
    ep.site.add_resource(("cached",), Cached())
    ep.datagram_received(req(path="cached", mid=1), CLIENT)
    ep.datagram_received(req(Code.PUT, path="cached", mid=2), CLIENT)
    out = take(ep)
    assert [m.code for m, _ in out] == [Code.CONTENT, Code.CHANGED]
    assert cached.code == 0 and cached.options == [] and len(cached.payload) == 3000


def test_proxy_requests_get_505() -> None:
    ep, _, _ = make_endpoint()
    ep.datagram_received(req(path="", mid=1, options=[(o.PROXY_URI, "coap://h/x")]), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.code == Code.PROXYING_NOT_SUPPORTED


def test_link_format_takes_aiocoap_get_link_description() -> None:
    from m2mhub.coap import Resource

    class Legacy(Resource):
        def get_link_description(self) -> dict[str, str]:
            return {"rt": "legacy.sensor", "title": "ported"}

        def render_get(self, request: Message) -> Message:
            return Message(payload=b"x")

    ep, _, _ = make_endpoint()
    assert ep.site is not None
    ep.site.add_resource(("legacy",), Legacy())
    ep.datagram_received(req(path=".well-known/core", mid=1, uri_query=["rt=legacy*"]), CLIENT)
    [(msg, _)] = take(ep)
    assert msg.payload == b'</legacy>;rt="legacy.sensor";title="ported"'


def test_a_response_that_cannot_be_encoded_becomes_500() -> None:
    from m2mhub.coap import Resource

    class Bad(Resource):
        def render_get(self, request: Message) -> Message:
            return Message(options=[(o.CONTENT_FORMAT, 1.5)])  # type: ignore[list-item]

    ep, _, _ = make_endpoint()
    assert ep.site is not None
    ep.site.add_resource(("bad",), Bad())
    ep.datagram_received(req(path="bad", mid=1), CLIENT)
    [(msg, _)] = take(ep)
    assert (msg.mtype, msg.code, msg.mid) == (ACK, Code.INTERNAL_SERVER_ERROR, 1)
    ep.datagram_received(req(path="bad", mid=1), CLIENT)  # the duplicate gets the same answer
    [(again, _)] = take(ep)
    assert again == msg


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 5000), szx=st.integers(0, 6))
def test_block2_reassembles_any_size_with_any_block_size(size: int, szx: int) -> None:
    from m2mhub.coap import Resource

    data = bytes(i * 7 % 251 for i in range(size))

    class Blob(Resource):
        def render_get(self, request: Message) -> Message:
            return Message(payload=data)

    ep, _, _ = make_endpoint()
    assert ep.site is not None
    ep.site.add_resource(("blob",), Blob())
    got = b""
    for num in range(1000):
        opts = [(o.URI_PATH, "blob"), (o.BLOCK2, o.block_value(num, False, szx))]
        ep.datagram_received(req(path="", mid=num, options=opts), CLIENT)
        [(msg, _)] = take(ep)
        assert msg.code == Code.CONTENT
        got += msg.payload
        if msg.block2 is None or not msg.block2[1]:
            break
    assert got == data


def test_other_methods_get_their_default_codes() -> None:
    from m2mhub.coap import Resource

    class All(Resource):
        def render_fetch(self, request: Message) -> Message:
            return Message(payload=request.payload)

        def render_patch(self, request: Message) -> Message:
            return Message()

        def render_ipatch(self, request: Message) -> Message:
            return Message()

        def render_delete(self, request: Message) -> Message:
            return Message()

    ep, _, _ = make_endpoint()
    assert ep.site is not None
    ep.site.add_resource(("all",), All())
    for mid, code in enumerate((Code.FETCH, Code.PATCH, Code.IPATCH, Code.DELETE, Code.GET)):
        ep.datagram_received(req(code, path="all", mid=mid, payload=b"q"), CLIENT)
    assert [m.code for m, _ in take(ep)] == [
        Code.CONTENT,
        Code.CHANGED,
        Code.CHANGED,
        Code.DELETED,
        Code.METHOD_NOT_ALLOWED,
    ]


def test_bad_option_values() -> None:
    ep, _, _ = make_endpoint()
    # Uri-Path that is not UTF-8 (critical): 4.02
    ep.datagram_received(bytes.fromhex("41010001ab" + "b2fffe"), CLIENT)
    # Uri-Host longer than 255 is impossible to express badly, but an empty one is too short
    ep.datagram_received(bytes.fromhex("41010002ab" + "30"), CLIENT)
    # Content-Format (elective) with 3 bytes: ignored, the request is served
    ep.datagram_received(bytes.fromhex("41010003ab" + "b7636f756e746572" + "13000000"), CLIENT)
    out = take(ep)
    assert [(m.code, m.mid) for m, _ in out] == [
        (Code.BAD_OPTION, 1),
        (Code.BAD_OPTION, 2),
        (Code.CONTENT, 3),
    ]


def test_a_render_method_gets_every_method_without_its_own() -> None:
    from m2mhub.coap import Resource

    class Catch(Resource):
        def render_get(self, request: Message) -> Message:
            return Message(payload=b"get")

        def render(self, request: Message) -> Message:
            return Message(code=Code.CHANGED, payload=str(request.code).encode())

    ep, _, _ = make_endpoint()
    assert ep.site is not None
    ep.site.add_resource(("catch",), Catch())
    ep.datagram_received(req(path="catch", mid=1), CLIENT)
    ep.datagram_received(req(Code.IPATCH, path="catch", mid=2), CLIENT)
    assert [m.payload for m, _ in take(ep)] == [b"get", b"0.07 iPATCH"]
