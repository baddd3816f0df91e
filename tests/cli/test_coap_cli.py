"""`m2mhub coap` as a user runs it, against libcoap's own example server (coap-server-notls).

The expectations come from running coap-client-notls side by side: the same payloads, the same
`-v 6` message lines, the same "4.04 Not Found" on stderr (plus our non-zero exit statuses).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.coap.coapapp_support import (
    ENV,
    Proc,
    coap_client,
    libcoap_server,
    m2mhub_coap,
    resetting_udp_port,
    silent_udp_port,
)
from tests.support import M2MHUB, running

pytestmark = pytest.mark.interop

TIME = re.compile(rb"^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d$")


def test_get_time_ipv4_and_ipv6() -> None:
    with libcoap_server() as port:
        r = m2mhub_coap("-m", "get", f"coap://127.0.0.1:{port}/time")
        assert r.returncode == 0, r.stderr
        assert TIME.match(r.stdout.strip())
        r6 = m2mhub_coap("-m", "get", f"coap://[::1]:{port}/time")
        assert r6.returncode == 0, r6.stderr
        assert TIME.match(r6.stdout.strip())


def test_non_get_of_root_prints_the_same_as_coap_client() -> None:
    with libcoap_server() as port:
        ours = m2mhub_coap("-N", "-m", "get", f"coap://127.0.0.1:{port}/")
        theirs = coap_client("-N", "-m", "get", f"coap://127.0.0.1:{port}/")
        assert ours.returncode == 0
        assert b"libcoap" in ours.stdout
        assert ours.stdout.rstrip(b"\n") == theirs.stdout.rstrip(b"\n")


def test_verbose_prints_every_message_like_libcoap() -> None:
    with libcoap_server() as port:
        uri = f"coap://127.0.0.1:{port}/time?a=1"
        r = m2mhub_coap("-v", "6", "-N", "-T", "cafe", "-A", "0", "-O", "65000,hi", uri)
        out = r.stdout.decode()
        lines = out.splitlines()
        assert re.match(
            r"v:1 t:NON c:GET i:[0-9a-f]{4} \{63616665\} \[ Uri-Port:\d+, Uri-Path:time, "
            r"Uri-Query:a=1, Accept:text/plain, 65000:hi \]$",
            lines[0],
        ), out
        assert re.match(
            r"v:1 t:NON c:2\.05 i:[0-9a-f]{4} \{63616665\} \[ .*Max-Age:1 \] :: '", lines[1]
        )
        assert TIME.match(lines[2].encode())


def test_put_then_get_and_delete_a_dynamic_resource() -> None:
    with libcoap_server() as port:
        uri = f"coap://127.0.0.1:{port}/alarm"
        assert m2mhub_coap("-m", "put", "-e", "ON", uri).returncode == 0
        assert coap_client("-m", "get", uri).stdout.rstrip(b"\n") == b"ON"
        r = m2mhub_coap("-m", "get", uri)
        assert r.stdout == b"ON\n"
        assert m2mhub_coap("-m", "delete", uri).returncode == 0
        gone = m2mhub_coap("-m", "get", uri)
        assert gone.returncode == 1
        assert gone.stderr.decode().startswith("4.04 Not Found")


def test_error_response_is_reported_and_exits_1() -> None:
    with libcoap_server() as port:
        r = m2mhub_coap("-m", "post", "-e", "x", f"coap://127.0.0.1:{port}/time")
        assert r.returncode == 1
        assert r.stderr.decode().strip() == "4.05 Method Not Allowed"
        assert r.stdout == b""


def test_blockwise_upload_and_download(tmp_path: Path) -> None:
    body = bytes(range(48, 123)) * 60  # 4500 bytes of text
    src = tmp_path / "body.txt"
    src.write_bytes(body)
    with libcoap_server() as port:
        uri = f"coap://127.0.0.1:{port}/big"
        up = m2mhub_coap("-m", "put", "-b", "32", "-f", str(src), uri)
        assert up.returncode == 0, up.stderr
        # libcoap reads back what we uploaded in 32-byte blocks ...
        assert coap_client("-m", "get", uri).stdout.rstrip(b"\n") == body
        # ... and we download it in 16-byte blocks (each one visible with -v 6).
        out = tmp_path / "out.txt"
        down = m2mhub_coap("-v", "6", "-b", "16", "-o", str(out), uri)
        assert down.returncode == 0
        assert out.read_bytes() == body
        assert down.stdout.count(b"Block2:") > 2 * (len(body) // 16)
        # Without -b, a body over 1024 bytes still goes in blocks (libcoap's default size).
        up2 = m2mhub_coap("-m", "put", "-f", "-", uri + "2", stdin=body)
        assert up2.returncode == 0
        assert m2mhub_coap(uri + "2").stdout == body + b"\n"


def test_observe_prints_each_notification_on_a_line_and_deregisters() -> None:
    with libcoap_server() as port:
        r = m2mhub_coap("-v", "6", "-s", "2.5", f"coap://127.0.0.1:{port}/time")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.decode().splitlines()
        payloads = [ln for ln in lines if TIME.match(ln.encode())]
        assert len(payloads) >= 3  # the first response and at least two ticks
        assert "Observe:0" in lines[0]
        assert any("c:GET" in ln and "Observe:1" in ln for ln in lines)  # deregistration


def test_timeout_exits_3_with_a_message() -> None:
    with silent_udp_port() as port:
        r = m2mhub_coap("-B", "1", f"coap://127.0.0.1:{port}/x")
        assert r.returncode == 3
        assert b"timeout" in r.stderr and str(port).encode() in r.stderr


def test_rst_exits_4_with_a_message() -> None:
    with resetting_udp_port() as port:
        r = m2mhub_coap("-B", "5", f"coap://127.0.0.1:{port}/x")
        assert r.returncode == 4
        assert b"got RST for mid=0x" in r.stderr


def test_nothing_listening_exits_5() -> None:
    with silent_udp_port() as port:
        pass
    r = m2mhub_coap("-B", "5", f"coap://127.0.0.1:{port}/x")
    assert r.returncode == 5
    assert b"Connection refused" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-m", "frob", "coap://127.0.0.1/"],
        ["http://127.0.0.1/"],
        ["-b", "100", "coap://127.0.0.1/"],
        ["-O", "x,y", "coap://127.0.0.1/"],
        ["-T", "123456789", "coap://127.0.0.1/"],
        ["-t", "nonsense", "coap://127.0.0.1/"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    r = m2mhub_coap(*args)
    assert r.returncode == 2
    assert r.stderr.startswith(b"m2mhub coap: ")


def test_help() -> None:
    r = m2mhub_coap("--help")
    assert r.returncode == 0
    assert b"-m method" in r.stdout and b"-s duration" in r.stdout


def test_observe_a_put_resource_sees_changes() -> None:
    with libcoap_server() as port:
        uri = f"coap://127.0.0.1:{port}/alarm"
        assert m2mhub_coap("-m", "put", "-e", "OFF", uri).returncode == 0
        with running([*M2MHUB, "coap", "-s", "20", uri], env=ENV) as obs:
            obs.wait_for_line("OFF")
            assert m2mhub_coap("-m", "put", "-e", "ON", uri).returncode == 0
            obs.wait_for_line("ON")
        assert isinstance(obs, Proc)


def test_ctrl_c_ends_an_observation_cleanly() -> None:
    import signal

    with libcoap_server() as port:
        args = [*M2MHUB, "coap", "-v", "6", "-s", "60", f"coap://127.0.0.1:{port}/time"]
        with running(args, env=ENV) as obs:
            obs.wait_for_line("Observe:0")
            obs.wait_for_line("c:2.05")
            obs.popen.send_signal(signal.SIGINT)
            assert obs.wait(10) == 0
        assert any("c:GET" in ln and "Observe:1" in ln for ln in obs.lines)  # deregistered


def test_observe_without_answer_times_out() -> None:
    with silent_udp_port() as port:
        r = m2mhub_coap("-s", "10", "-B", "1", f"coap://127.0.0.1:{port}/time")
        assert r.returncode == 3
        assert b"timeout" in r.stderr
    with libcoap_server() as port:
        r = m2mhub_coap("-s", "10", f"coap://127.0.0.1:{port}/nothing")
        assert r.returncode == 1 and r.stderr.startswith(b"4.04")


def test_names_send_uri_host_unless_minus_u() -> None:
    with libcoap_server() as port:
        named = m2mhub_coap("-v", "6", f"coap://localhost:{port}/time")
        first = named.stdout.decode().splitlines()[0]
        assert f"[ Uri-Host:localhost, Uri-Port:{port}, Uri-Path:time ]" in first
        bare = m2mhub_coap("-U", "-v", "6", f"coap://localhost:{port}/time")
        first = bare.stdout.decode().splitlines()[0]
        assert first.endswith("[ Uri-Path:time ]")
        assert bare.returncode == 0


def test_repeat_with_minus_g() -> None:
    with libcoap_server() as port:
        r = m2mhub_coap("-G", "2", f"coap://127.0.0.1:{port}/time")
        assert r.returncode == 0
        assert len([ln for ln in r.stdout.splitlines() if TIME.match(ln)]) == 2
    assert m2mhub_coap("-G", "0", "coap://127.0.0.1/").returncode == 2
