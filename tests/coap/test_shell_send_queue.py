"""The UDP shell queues datagrams when the kernel send buffer is full and sends them later."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from m2mhub.coap.endpoint import Endpoint
from m2mhub.coap.message import Message, decode
from m2mhub.net.coap_server import CoapSocket

from .helpers import FakeClock, make_site


class FullBufferSocket(socket.socket):
    """A UDP socket whose first ``refuse`` sends fail with EAGAIN."""

    refuse = 0
    attempts = 0

    def sendto(self, data: Any, address: Any) -> int:  # type: ignore[override]
        self.attempts += 1
        if self.refuse > 0:
            self.refuse -= 1
            raise BlockingIOError
        return super().sendto(data, address)


def test_blocked_datagrams_are_sent_when_the_socket_is_writable() -> None:
    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        sock = FullBufferSocket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        site, _ = make_site()
        ep = Endpoint(site, clock=FakeClock())
        shell = CoapSocket(ep, sock, loop)
        try:
            peer = receiver.getsockname()
            sock.refuse = 3
            for i in range(5):
                ep.send_message(Message(1, 69, i, b"t", payload=str(i).encode()), peer)
            shell.flush()
            assert len(shell._blocked) == 5  # the first send failed, the rest queued behind it
            got = []
            while len(got) < 5:
                got.append(await loop.run_in_executor(None, receiver.recv, 100))
            return got
        finally:
            shell.close()
            receiver.close()

    got = asyncio.run(scenario())
    assert [decode(d).payload for d in got] == [b"0", b"1", b"2", b"3", b"4"]
