"""MQTT 5 enhanced authentication end to end: our client's SCRAM-SHA-256 against ``m2mhub serve``
(credentials written by ``m2mhub passwd -H scram-sha-256``), over real sockets."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from m2mhub.auth.enhanced import Continue, Success
from m2mhub.auth.scram import ScramSha256Client
from m2mhub.client import (
    AuthenticationError,
    ConnectionLostError,
    ConnectionRefusedByBroker,
    MQTTClient,
)
from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.net.mqtt_server import MqttServer
from tests.support import M2MHUB, Proc, m2mhub_broker

pytestmark = pytest.mark.interop


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, int]]:
    tmp = tmp_path_factory.mktemp("scram")
    pwfile = tmp / "passwords"
    for args in (["-c", "-H", "scram-sha-256"], ["-H", "sha512-pbkdf2"]):
        user = "alice" if "-c" in args else "bob"
        subprocess.run(
            [*M2MHUB, "passwd", *args, "-b", str(pwfile), user, f"{user}-secret"], check=True
        )
    with m2mhub_broker(tmp, [f"password_file {pwfile}"]) as running:
        yield running


def test_scram_login_then_publish_and_reauthenticate(hub: tuple[Proc, int]) -> None:
    proc, port = hub

    async def main() -> None:
        async with MQTTClient() as client:
            await client.connect(
                "127.0.0.1",
                port,
                "scram-alice",
                protocol=5,
                auth=ScramSha256Client("alice", "alice-secret"),
            )
            assert client.connack_properties[0x15] == "SCRAM-SHA-256"
            assert client.connack_properties[0x16].startswith(b"v=")
            await client.subscribe([("scram/t", 1)])
            await client.publish("scram/t", b"hello", qos=1)
            assert (await client.next_message(timeout=5)).payload == b"hello"
            props = await client.reauthenticate(timeout=5)
            assert props[0x16].startswith(b"v=")
            await client.publish("scram/t", b"still here", qos=1)
            assert (await client.next_message(timeout=5)).payload == b"still here"

    run(main())
    proc.wait_for_line("Sending AUTH to scram-alice (rc24, SCRAM-SHA-256)")
    proc.wait_for_line("as scram-alice (p5, c1, k60, u'alice').")


def test_scram_wrong_password_is_refused_with_0x86(hub: tuple[Proc, int]) -> None:
    _, port = hub

    async def main() -> None:
        client = MQTTClient()
        with pytest.raises(ConnectionRefusedByBroker) as refused:
            await client.connect(
                "127.0.0.1", port, protocol=5, auth=ScramSha256Client("alice", "guess")
            )
        assert refused.value.code == 0x86
        assert "bad user name or password" in refused.value.properties[0x1F]

    run(main())


def test_user_without_scram_verifier_cannot_use_scram_but_can_use_password(
    hub: tuple[Proc, int],
) -> None:
    _, port = hub

    async def main() -> None:
        with pytest.raises(ConnectionRefusedByBroker) as refused:
            await MQTTClient().connect(
                "127.0.0.1", port, protocol=5, auth=ScramSha256Client("bob", "bob-secret")
            )
        assert refused.value.code == 0x86
        async with MQTTClient() as plain:
            await plain.connect(
                "127.0.0.1", port, protocol=5, username="bob", password="bob-secret"
            )
        async with MQTTClient() as scram_user_plain_login:
            await scram_user_plain_login.connect(
                "127.0.0.1", port, protocol=4, username="alice", password="alice-secret"
            )

    run(main())


class _Unknown:
    name = "X-UNKNOWN"

    def start(self) -> _UnknownExchange:
        return _UnknownExchange()


class _UnknownExchange:
    def initial_data(self) -> bytes | None:
        return b"hi"

    def step(self, data: bytes | None) -> Continue:
        return Continue(b"")

    def finish(self, data: bytes | None) -> Success:
        return Success()


def test_unknown_method_is_refused_with_0x8c(hub: tuple[Proc, int]) -> None:
    _, port = hub

    async def main() -> None:
        with pytest.raises(ConnectionRefusedByBroker) as refused:
            await MQTTClient().connect("127.0.0.1", port, protocol=5, auth=_Unknown())
        assert refused.value.code == 0x8C

    run(main())


class _Impostor:
    """A broker-side SCRAM look-alike that accepts any proof and cannot sign."""

    name = "SCRAM-SHA-256"

    def start(self, client_id: str, username: str | None, reauthenticating: bool) -> Any:
        class Exchange:
            challenged = False

            def step(self, data: bytes | None) -> Any:
                if not self.challenged:
                    self.challenged = True
                    nonce = (data or b"").split(b"r=")[1].decode()
                    return Continue(f"r={nonce}xyz,s=c2FsdHNhbHQ=,i=4096".encode())
                return Success(b"v=" + b"A" * 43 + b"=")

        return Exchange()


def test_client_refuses_a_broker_that_cannot_prove_itself() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        broker = Broker(
            BrokerSettings(sys_interval=0),
            BrokerLog(()),
            now=loop.time(),
            auth_methods=[_Impostor()],
        )
        server = MqttServer()
        await server.start(broker, [("127.0.0.1", 0)])
        try:
            client = MQTTClient()
            with pytest.raises(AuthenticationError, match="signature"):
                await client.connect(
                    "127.0.0.1",
                    server.ports[0],
                    protocol=5,
                    auth=ScramSha256Client("alice", "alice-secret"),
                )
        finally:
            await server.close()

    run(main())


def test_reauthentication_refused_ends_the_connection(tmp_path: Path) -> None:
    async def main() -> None:
        from m2mhub.auth.scram import ScramCredentials, ScramSha256

        users = {"carol": ScramCredentials.from_password("one")}
        loop = asyncio.get_running_loop()
        broker = Broker(
            BrokerSettings(sys_interval=0),
            BrokerLog(()),
            now=loop.time(),
            auth_methods=[ScramSha256(users.get)],
        )
        server = MqttServer()
        await server.start(broker, [("127.0.0.1", 0)])
        try:
            method = ScramSha256Client("carol", "one")
            async with MQTTClient() as client:
                await client.connect("127.0.0.1", server.ports[0], protocol=5, auth=method)
                users["carol"] = ScramCredentials.from_password("two")  # password changed
                with pytest.raises(ConnectionLostError) as lost:
                    await client.reauthenticate(timeout=5)
                # SCRAM's 0x86 cannot be a DISCONNECT code: Not authorized.
                assert lost.value.reason_code == 0x87
        finally:
            await server.close()

    run(main())
