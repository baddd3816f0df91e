"""The UDP shell's optional datagram tap sees every datagram received and sent, as sent."""

from __future__ import annotations

import asyncio
import socket

from m2mhub.coap.endpoint import Endpoint
from m2mhub.coap.message import Message, decode, encode
from m2mhub.coap.options import Code
from m2mhub.net.coap_server import Address, CoapSocket, start_coap_server

from .helpers import FakeClock, make_site
from .test_shell_send_queue import FullBufferSocket

Seen = tuple[Address, Address, bool, bytes]


class RecordingTap:
    def __init__(self) -> None:
        self.seen: list[Seen] = []

    def datagram(self, local: Address, peer: Address, received: bool, data: bytes) -> None:
        self.seen.append((local, peer, received, data))


def test_tap_sees_the_request_and_the_response_with_both_addresses() -> None:
    async def scenario() -> tuple[list[Seen], Address, Address, bytes, bytes]:
        loop = asyncio.get_running_loop()
        tap = RecordingTap()
        site, _ = make_site()
        server = await start_coap_server(site, [("127.0.0.1", 0)], tap=tap)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.settimeout(5)
        try:
            request = encode(Message(0, Code.GET, 0x1234, b"\x07", uri_path=("alarm",)))
            server_addr = server.addresses[0]
            client.sendto(request, server_addr)
            reply = await loop.run_in_executor(None, client.recv, 2048)
            return tap.seen, server_addr, client.getsockname(), request, reply
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    seen, server_addr, client_addr, request, reply = asyncio.run(scenario())
    assert decode(reply).payload == b"OFF"
    assert seen == [
        (server_addr, client_addr, True, request),
        (server_addr, client_addr, False, reply),
    ]


def test_tap_sees_queued_datagrams_only_once_the_kernel_takes_them() -> None:
    async def scenario() -> tuple[list[Seen], list[bytes], Address, Address]:
        loop = asyncio.get_running_loop()
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        sock = FullBufferSocket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        site, _ = make_site()
        tap = RecordingTap()
        shell = CoapSocket(Endpoint(site, clock=FakeClock()), sock, loop, tap=tap)
        try:
            peer = receiver.getsockname()
            sock.refuse = 2
            for i in range(3):
                shell.endpoint.send_message(Message(1, 69, i, b"t", payload=b"%d" % i), peer)
            shell.flush()
            assert tap.seen == []  # all three queued behind the refused first one
            got = []
            while len(got) < 3:
                got.append(await loop.run_in_executor(None, receiver.recv, 100))
            return tap.seen, got, shell.address, peer
        finally:
            shell.close()
            receiver.close()

    seen, got, local, peer = asyncio.run(scenario())
    assert seen == [(local, peer, False, data) for data in got]
