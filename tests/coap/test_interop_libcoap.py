"""libcoap's coap-client-notls (and mosquitto's clients) against `m2mhub serve`, over real UDP.

One hub per module keeps this quick; every test uses its own topics.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.coap.coapapp_support import coap_client, hub_serve, m2mhub_coap
from tests.support import Proc, require, running

pytestmark = pytest.mark.interop

TIME = re.compile(r"^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d$")


@pytest.fixture(scope="module")
def hub_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, int, int]]:
    """One `m2mhub serve -v` for the module: (process, mqtt_port, coap_port)."""
    with hub_serve(tmp_path_factory.mktemp("hub")) as running_hub:
        yield running_hub


@pytest.fixture
def hub(hub_process: tuple[Proc, int, int]) -> tuple[int, int]:
    """(mqtt_port, coap_port) of the module's hub."""
    return hub_process[1], hub_process[2]


def uri(hub: tuple[int, int], path: str, host: str = "127.0.0.1") -> str:
    return f"coap://{host}:{hub[1]}{path}"


def test_get_time_con_and_non_ipv4_and_ipv6(hub: tuple[int, int]) -> None:
    for host in ("127.0.0.1", "[::1]"):
        for extra in ([], ["-N"]):
            r = coap_client(*extra, "-m", "get", uri(hub, "/time", host))
            assert r.returncode == 0 and r.stderr == b""
            assert TIME.match(r.stdout.decode().strip()), r.stdout


def test_non_request_gets_a_non_response(hub: tuple[int, int]) -> None:
    r = coap_client("-v", "6", "-N", "-m", "get", uri(hub, "/time"))
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("v:1 t:NON c:GET")
    assert lines[1].startswith("v:1 t:NON c:2.05")


def test_well_known_core(hub: tuple[int, int]) -> None:
    r = coap_client("-m", "get", uri(hub, "/.well-known/core"))
    text = r.stdout.decode()
    for piece in ('</time>;rt="ticks";if="clock"', '</alarm>;rt="alarm"', "</ps>", "obs"):
        assert piece in text, text
    filtered = coap_client("-m", "get", uri(hub, "/.well-known/core?rt=ticks"))
    assert filtered.stdout.decode().strip().startswith("</time>")
    assert "</alarm>" not in filtered.stdout.decode()


@pytest.mark.parametrize("non", [False, True])
def test_every_method_on_a_topic(hub: tuple[int, int], non: bool) -> None:
    flags = ["-N"] if non else []
    topic = uri(hub, f"/ps/methods/{'non' if non else 'con'}")
    assert coap_client(*flags, "-m", "get", topic).stderr.startswith(b"4.04")
    assert coap_client(*flags, "-m", "put", "-e", "v1", topic).stderr == b""
    assert coap_client(*flags, "-m", "get", topic).stdout.strip() == b"v1"
    assert coap_client(*flags, "-m", "post", "-e", "v2", topic).stderr == b""
    assert coap_client(*flags, "-m", "get", topic).stdout.strip() == b"v1"  # POST: not retained
    assert coap_client(*flags, "-m", "delete", topic).stderr == b""
    assert coap_client(*flags, "-m", "get", topic).stderr.startswith(b"4.04")
    for method in ("fetch", "patch", "ipatch"):
        assert coap_client(*flags, "-m", method, "-e", "x", topic).stderr.startswith(b"4.05")


def test_alarm_put_and_get(hub: tuple[int, int]) -> None:
    assert coap_client("-m", "put", "-e", "ON", uri(hub, "/alarm")).stderr == b""
    assert coap_client("-m", "get", uri(hub, "/alarm")).stdout.strip() == b"ON"
    assert coap_client("-m", "put", "-e", "OFF", uri(hub, "/alarm", "[::1]")).stderr == b""
    assert coap_client("-m", "get", uri(hub, "/alarm")).stdout.strip() == b"OFF"
    assert coap_client("-m", "put", "-e", "BROKEN", uri(hub, "/alarm")).stderr.startswith(b"4.00")


def test_observe_time_and_deregistration(hub: tuple[int, int]) -> None:
    r = coap_client("-w", "-s", "3", "-m", "get", uri(hub, "/time"))
    ticks = [ln for ln in r.stdout.decode().splitlines() if TIME.match(ln)]
    assert len(ticks) >= 3
    # Our client waits for the answer to its deregistration: a 2.05 without Observe.
    ours = m2mhub_coap("-v", "6", "-s", "1.5", uri(hub, "/time"))
    lines = ours.stdout.decode().splitlines()
    dereg = [i for i, ln in enumerate(lines) if "c:GET" in ln and "Observe:1" in ln]
    assert dereg, lines
    answer = [ln for ln in lines[dereg[0] + 1 :] if ln.startswith("v:1 t:ACK c:2.05")]
    assert answer and "Observe:" not in answer[0]


def test_blockwise_put_and_get_with_16_byte_blocks(hub: tuple[int, int], tmp_path: Path) -> None:
    body = b"".join(b"line %04d of a large retained message\n" % i for i in range(150))
    src = tmp_path / "body.txt"
    src.write_bytes(body)
    topic = uri(hub, "/ps/blocks/big")
    put = coap_client("-b", "16", "-m", "put", "-f", str(src), topic)
    assert put.returncode == 0 and put.stderr == b""
    got = coap_client("-b", "16", "-m", "get", topic)
    assert got.stdout.rstrip(b"\n") == body.rstrip(b"\n")
    # Without -b the server chooses 1024-byte blocks; libcoap reassembles them.
    assert coap_client("-m", "get", topic).stdout.rstrip(b"\n") == body.rstrip(b"\n")
    verbose = coap_client("-v", "6", "-b", "16", "-m", "get", topic).stdout.decode()
    assert "Block2:1/M/16" in verbose


def test_mqtt_publish_becomes_coap_notification(hub: tuple[int, int]) -> None:
    pub = require("mosquitto_pub")
    exe = require("coap-client-notls")
    coap_client("-m", "put", "-e", "start", uri(hub, "/ps/bridge/m2c"))
    with running([exe, "-w", "-s", "20", "-m", "get", uri(hub, "/ps/bridge/m2c")]) as observer:
        observer.wait_for_line("start")  # the retained value: the observation is registered
        for n in range(3):
            subprocess.run(
                [pub, "-p", str(hub[0]), "-t", "bridge/m2c", "-m", f"reading {n}", "-q", "1"],
                check=True,
                timeout=10,
            )
            observer.wait_for_line(f"reading {n}")
    alarm = require("coap-client-notls")
    with running([alarm, "-w", "-s", "20", "-m", "get", uri(hub, "/alarm")]) as observer:
        observer.wait_for_line("O")  # ON or OFF, whatever the state is
        start = len(observer.lines)
        subprocess.run(
            [pub, "-p", str(hub[0]), "-t", "alarm", "-m", "ON", "-r"], check=True, timeout=10
        )
        assert observer.wait_for_line("ON", start=start) == "ON"


def test_coap_put_reaches_mqtt_subscriber(hub: tuple[int, int]) -> None:
    sub = require("mosquitto_sub")
    with running([sub, "-p", str(hub[0]), "-t", "bridge/c2m/#", "-v", "-q", "1"]) as mqtt:
        # mosquitto_sub prints nothing when subscribed: publish until the first one arrives.
        for attempt in range(50):
            coap_client("-m", "post", "-e", f"probe {attempt}", uri(hub, "/ps/bridge/c2m/probe"))
            try:
                mqtt.wait_for_line("probe", timeout=0.2)
                break
            except TimeoutError:
                continue
        assert (
            coap_client("-m", "put", "-e", "hello mqtt", uri(hub, "/ps/bridge/c2m/x")).stderr == b""
        )
        assert mqtt.wait_for_line("bridge/c2m/x") == "bridge/c2m/x hello mqtt"
        coap_client("-m", "put", "-e", "ON", uri(hub, "/alarm"))
    with running([sub, "-p", str(hub[0]), "-t", "alarm", "-C", "1"]) as retained:
        assert retained.wait_for_line("ON") == "ON"  # the CoAP PUT was retained


def test_m2mhub_coap_against_m2mhub_serve(hub: tuple[int, int]) -> None:
    topic = uri(hub, "/ps/ours/x")
    assert m2mhub_coap("-m", "put", "-e", "42", topic).returncode == 0
    assert m2mhub_coap(topic).stdout == b"42\n"
    missing = m2mhub_coap(uri(hub, "/nothing"))
    assert missing.returncode == 1 and missing.stderr.startswith(b"4.04 Not Found")


def test_non_observe_and_accept(hub: tuple[int, int]) -> None:
    r = coap_client("-N", "-w", "-s", "2", "-m", "get", uri(hub, "/time"))
    assert len([ln for ln in r.stdout.decode().splitlines() if TIME.match(ln)]) >= 2
    ours = m2mhub_coap("-N", "-s", "2", uri(hub, "/time"))
    assert ours.returncode == 0
    assert len([ln for ln in ours.stdout.decode().splitlines() if TIME.match(ln)]) >= 2
    refused = m2mhub_coap("-A", "json", uri(hub, "/time"))
    assert refused.returncode == 1 and refused.stderr.startswith(b"4.06 Not Acceptable")
    assert m2mhub_coap("-A", "text", uri(hub, "/time")).returncode == 0


def test_bad_datagrams_are_logged_once_and_the_hub_keeps_serving(tmp_path: Path) -> None:
    import socket

    with hub_serve(tmp_path) as (proc, _, coap_port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(bytes.fromhex("4901abcd") + bytes(9), ("127.0.0.1", coap_port))  # TKL 9
            reply = s.recv(64)
            assert reply[0] >> 4 == 0x7 and reply[2:4] == b"\xab\xcd"  # RST, same mid
        line = proc.wait_for_line("token length 9")
        assert "RST" in line
        r = coap_client("-m", "get", f"coap://127.0.0.1:{coap_port}/time")
        assert TIME.match(r.stdout.decode().strip())


@pytest.mark.parametrize(
    ("method", "shown"), [("fetch", "FETCH"), ("patch", "PATCH"), ("ipatch", "iPATCH")]
)
def test_m2mhub_coap_sends_every_method_like_coap_client(
    hub: tuple[int, int], method: str, shown: str
) -> None:
    ours = m2mhub_coap("-v", "6", "-m", method, "-e", "x", uri(hub, "/time"))
    theirs = coap_client("-v", "6", "-m", method, "-e", "x", uri(hub, "/time"))
    mine, libcoap = ours.stdout.decode().splitlines()[0], theirs.stdout.decode().splitlines()[0]
    token_and_mid = re.compile(r"i:[0-9a-f]{4} \{[0-9a-f]*\}")
    assert token_and_mid.sub("", mine) == token_and_mid.sub("", libcoap)
    assert f"c:{shown} " in mine
    assert ours.returncode == 1 and ours.stderr.startswith(b"4.05")


def test_coap_client_deregistration_is_seen_by_the_hub(hub_process: tuple[Proc, int, int]) -> None:
    proc, _, coap_port = hub_process
    start = len(proc.lines)
    r = coap_client("-s", "1", "-m", "get", f"coap://127.0.0.1:{coap_port}/alarm")
    assert r.returncode == 0
    line = proc.wait_for_line("removed: deregistered", start=start)
    assert "observer" in line


def test_non_get_of_the_root_describes_the_hub(hub: tuple[int, int]) -> None:
    """The lab's `coap-client -N -m get coap://127.0.0.1/` step."""
    for client in (coap_client, m2mhub_coap):
        r = client("-N", "-m", "get", uri(hub, "/"))
        assert r.returncode == 0
        assert r.stdout.startswith(b"This is m2mhub")
    core = coap_client("-m", "get", uri(hub, "/.well-known/core")).stdout.decode()
    assert core.startswith('</>;ct=0;title="General Info"')


def test_async_resource_answers_with_a_separate_response(hub: tuple[int, int]) -> None:
    r = coap_client("-v", "6", "-m", "get", uri(hub, "/async?1"))
    lines = r.stdout.decode().splitlines()
    # not piggybacked: the response comes in its own CON with a message id of its own
    request_mid = re.search(r"t:CON c:GET i:(\w+)", lines[0])
    response = [line for line in lines if line.startswith("v:1 t:CON c:2.05")]
    # (a heavily loaded machine may retransmit the CON response: still never piggybacked)
    assert request_mid and response, lines
    assert all(f"i:{request_mid.group(1)} " not in line for line in response), lines
    assert lines[-1].strip() == "done", lines
