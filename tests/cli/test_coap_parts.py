"""The pieces of `m2mhub coap`: URI parsing, flag parsing, libcoap-style message lines, and the
client's message layer against scripted UDP peers (loss, duplicates, separate responses)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.cli.coap import UsageError, media_type, parse_args, parse_option
from m2mhub.client.coap import CoapClient, RequestTimeout, _Endpoint, _Exchange
from m2mhub.client.coap_show import show
from m2mhub.client.coap_uri import CoapUriError, parse_uri
from m2mhub.coap import options as o
from m2mhub.coap.message import ACK, CON, NON, Message, decode, encode
from m2mhub.coap.options import Code


@pytest.mark.parametrize(
    ("text", "host", "port", "path", "query"),
    [
        ("coap://127.0.0.1/time", "127.0.0.1", 5683, ("time",), ()),
        ("coap://[::1]:5684/a/b?x=1&y", "::1", 5684, ("a", "b"), ("x=1", "y")),
        ("coap://LocalHost", "localhost", 5683, (), ()),
        ("coap://h/", "h", 5683, (), ()),
        ("coap://h/a/", "h", 5683, ("a", ""), ()),
        ("coap://h/a%20b/%23?q=%26", "h", 5683, ("a b", "#"), ("q=&",)),
        ("coap://h/ps/house/+/temp", "h", 5683, ("ps", "house", "+", "temp"), ()),
    ],
)
def test_parse_uri(
    text: str, host: str, port: int, path: tuple[str, ...], query: tuple[str, ...]
) -> None:
    uri = parse_uri(text)
    assert (uri.host, uri.port, uri.path, uri.query) == (host, port, path, query)


@pytest.mark.parametrize(
    "text", ["http://h/", "h/x", "coap://", "coap://h:0/", "coap://h:99999/", "coap://[::1/"]
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(CoapUriError):
        parse_uri(text)


def test_flags() -> None:
    first = ["-m", "put", "-e", "caf%C3%A9", "-N", "-b", "2,64", "-t", "json", "-A", "60"]
    rest = ["-O", "2048,0x0102", "-O", "6,0", "-O", "11,x", "-T", "tok", "coap://h/r", "-B", "5"]
    opts = parse_args([*first, *rest])
    assert opts.method == "PUT" and opts.payload == "café".encode()
    assert not opts.confirmable
    assert (opts.block_start, opts.block_size) == (2, 64)
    assert (opts.content_format, opts.accept) == (50, 60)
    assert opts.extra == [(2048, b"\x01\x02"), (6, 0), (11, "x")]
    assert opts.token == b"tok" and opts.wait == 5.0
    assert opts.uri.path == ("r",)


def test_media_types_and_options() -> None:
    assert media_type("text") == 0 and media_type("42") == 42
    with pytest.raises(UsageError):
        media_type("nonsense")
    assert parse_option("65000,hello") == (65000, b"hello")
    with pytest.raises(UsageError):
        parse_option("6,notanumber")


def test_show_matches_libcoap_lines() -> None:
    req = Message(CON, Code.GET, 0x925A, b"\x01", uri_path=["time"])
    req.add(o.URI_PORT, 56830)
    assert show(req) == "v:1 t:CON c:GET i:925a {01} [ Uri-Port:56830, Uri-Path:time ]"
    resp = Message(ACK, Code.CONTENT, 0x925A, b"\x01", payload=b"a\nb", max_age=1)
    resp.add(o.BLOCK2, o.block_value(1, True, 2))
    assert show(resp) == "v:1 t:ACK c:2.05 i:925a {01} [ Max-Age:1, Block2:1/M/64 ] :: 'a\\x0Ab'"
    binary = Message(ACK, Code.CONTENT, 1, b"", payload=b"\x00A", content_format=42)
    assert show(binary).endswith(
        "[ Content-Format:application/octet-stream ] :: binary data length 2\n<<0041>>\n<<. A >>"
    )
    assert show(Message(ACK, 0, 0x61E4)) == "v:1 t:ACK c:0.00 i:61e4 {} [ ]"


# --- the client's message layer against scripted peers --------------------------------------


Script = Callable[[Message, Callable[[Message], None]], None]


@contextmanager
def scripted_peer(script: Script) -> Iterator[int]:
    """A UDP peer in a thread; ``script(request, send)`` decides what to answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            msg = decode(data)

            def send(reply: Message, addr: object = addr) -> None:
                sock.sendto(encode(reply), addr)  # type: ignore[arg-type]

            script(msg, send)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def fast_client() -> CoapClient:
    return CoapClient(ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=3)


def test_con_is_retransmitted_until_answered() -> None:
    seen: list[int] = []

    def script(req: Message, send: Callable[[Message], None]) -> None:
        seen.append(req.mid or 0)
        if len(seen) == 3:  # the first two copies are "lost"
            send(Message(ACK, Code.CONTENT, req.mid, req.token, payload=b"third time"))

    async def main() -> Message:
        async with fast_client() as client:
            return await client.request("GET", f"coap://127.0.0.1:{port}/x")

    with scripted_peer(script) as port:
        response = asyncio.run(main())
    assert response.payload == b"third time"
    assert len(seen) == 3 and len(set(seen)) == 1  # same message id each time


def test_gives_up_after_max_retransmit() -> None:
    seen: list[Message] = []

    async def main() -> None:
        async with fast_client() as client:
            await client.request("GET", f"coap://127.0.0.1:{port}/x")

    with scripted_peer(lambda req, send: seen.append(req)) as port, pytest.raises(RequestTimeout):
        asyncio.run(main())
    assert len(seen) == 4  # the first transmission and 3 retransmissions


def test_separate_response_duplicate_is_acked_twice_delivered_once() -> None:
    acks: list[Message] = []
    late_mids: list[int] = []

    def script(req: Message, send: Callable[[Message], None]) -> None:
        if req.code == 0:  # our ACKs of the separate response
            acks.append(req)
            return
        if req.mtype == CON:
            send(Message(ACK, 0, req.mid))  # empty ACK: the answer comes later
        late_mid = 0x7000 + len(late_mids)
        late_mids.append(late_mid)
        late = Message(CON, Code.CONTENT, late_mid, req.token, payload=b"later")
        send(late)
        send(late)  # a retransmission, as if our ACK had been lost

    received: list[Message] = []

    async def main() -> tuple[Message, Message]:
        def trace(direction: str, msg: Message) -> None:
            if direction == "recv" and msg.payload:
                received.append(msg)

        async with CoapClient(trace=trace) as client:
            first = await client.request("GET", f"coap://127.0.0.1:{port}/x")
            second = await client.request("GET", f"coap://127.0.0.1:{port}/y", confirmable=False)
            for _ in range(200):  # until both copies of both late responses are acknowledged
                if len(acks) >= 4:
                    break
                await asyncio.sleep(0.01)
            return first, second

    with scripted_peer(script) as port:
        first, second = asyncio.run(main())
    assert first.payload == b"later" and second.payload == b"later"
    assert len(received) == 4  # two copies of each late response arrived ...
    mids = [a.mid for a in acks]
    assert sorted(mids) == sorted(late_mids * 2)  # ... each copy was acknowledged
    assert all(a.mtype == ACK for a in acks)


def test_unknown_notification_gets_rst() -> None:
    answers: list[Message] = []

    def script(req: Message, send: Callable[[Message], None]) -> None:
        if req.code == 0:
            answers.append(req)
            return
        send(Message(ACK, Code.CONTENT, req.mid, req.token, payload=b"ok"))
        send(Message(NON, Code.CONTENT, 0x0101, b"stranger", payload=b"?"))

    async def main() -> None:
        async with fast_client() as client:
            await client.request("GET", f"coap://127.0.0.1:{port}/x")
            for _ in range(100):
                if answers:
                    return
                await asyncio.sleep(0.01)

    with scripted_peer(script) as port:
        asyncio.run(main())
    assert [(a.mtype, a.mid) for a in answers] == [(3, 0x0101)]  # RST


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40), token_known=st.booleans())
def test_any_datagram_is_handled_without_an_exception(data: bytes, token_known: bool) -> None:
    """Garbage from the network: ignored, answered with RST or delivered, never a crash."""

    async def main() -> None:
        client = CoapClient()
        ep = _Endpoint(client, ("127.0.0.1", 5683))
        sent: list[Message] = []
        ep.send = sent.append  # type: ignore[method-assign]
        if token_known and len(data) > 4:
            tkl = min(data[0] & 15, 8)
            ex = _Exchange(ep, bytes(data[4 : 4 + tkl]), observing=True)
            client._by_token[ex.token] = ex
            client._by_mid[(id(ep), (data[2] << 8) | data[3])] = ex
        client._received(ep, data)
        for msg in sent:
            assert msg.mtype in (ACK, 3) and msg.code == 0  # only empty ACK/RST go back

    asyncio.run(main())
