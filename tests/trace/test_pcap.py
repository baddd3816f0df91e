"""The pcap writer's files as tshark reads them: IPv4/IPv6, both link types, large writes,
checksums and TCP sequence numbers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from m2mhub.coap.message import Message
from m2mhub.coap.message import encode as coap_encode
from m2mhub.mqtt.codec import encode
from m2mhub.mqtt.packets import Connack, Connect, Puback, Publish
from m2mhub.trace.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter, _checksum
from tests.support import require

CHECKS = [
    "-o",
    "tcp.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "ip.check_checksum:TRUE",
]


def tshark(pcap: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [require("tshark"), "-r", str(pcap), *CHECKS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_checksum_matches_rfc1071_example() -> None:
    # RFC 1071 section 3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2, so the checksum is 220d.
    assert _checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert _checksum(b"\x01") == ~0x0100 & 0xFFFF


@pytest.mark.parametrize(
    ("linktype", "ip"),
    [
        (LINKTYPE_ETHERNET, "127.0.0.1"),
        (LINKTYPE_ETHERNET, "::1"),
        (LINKTYPE_RAW, "::1"),
    ],
)
def test_mqtt_and_coap_dissected(tmp_path: Path, linktype: int, ip: str) -> None:
    pcap = tmp_path / "t.pcap"
    big = b"x" * 150_000  # more than two segments' worth
    with pcap.open("wb") as f:
        w = PcapWriter(f, linktype)
        flow = w.tcp_open(100.0, (ip, 50000), (ip, 1883))
        w.tcp_data(100.1, flow, True, encode(Connect(client_id="p"), 4))
        w.tcp_data(100.2, flow, False, encode(Connack(), 4))
        w.tcp_data(100.3, flow, True, encode(Publish("big/one", big, 1, packet_id=1), 4))
        w.tcp_data(100.4, flow, False, encode(Puback(1), 4))
        w.tcp_close(100.5, flow)
        w.udp(
            101.0,
            (ip, 40000),
            (ip, 5683),
            coap_encode(Message(0, 1, 0x1A2B, b"\x7f", uri_path=["alarm"], observe=0)),
        )
        w.udp(
            101.1,
            (ip, 5683),
            (ip, 40000),
            coap_encode(Message(2, 69, 0x1A2B, b"\x7f", payload=b"ON", observe=3)),
        )
    mqtt = tshark(
        pcap,
        "-Y",
        "mqtt",
        "-T",
        "fields",
        "-e",
        "mqtt.msgtype",
        "-e",
        "mqtt.topic",
        "-e",
        "mqtt.len",
    )
    assert mqtt == ["1\t\t13", "2\t\t2", "3\tbig/one\t150011", "4\t\t2"]
    coap = tshark(
        pcap,
        "-Y",
        "coap",
        "-T",
        "fields",
        "-e",
        "coap.type",
        "-e",
        "coap.code",
        "-e",
        "coap.mid",
        "-e",
        "coap.opt.uri_path",
        "-e",
        "coap.opt.observe",
        "-e",
        "coap.payload",
    )
    assert [line.split("\t")[:5] for line in coap] == [
        ["0", "1", "6699", "alarm", "0"],
        ["2", "69", "6699", "", "3"],
    ]
    problems = "tcp.checksum.status==0 || udp.checksum.status==0 || ip.checksum.status==0 "
    problems += "|| tcp.analysis.flags || _ws.malformed || _ws.expert.severity >= warning"
    assert tshark(pcap, "-Y", problems) == []
    # SYN, SYN-ACK, ACK, then data; FIN-ACK both ways and the last ACK.
    flags = tshark(pcap, "-Y", "tcp", "-T", "fields", "-e", "tcp.flags.str")
    assert flags[:3] == ["··········S·", "·······A··S·", "·······A····"]
    assert flags[-3:] == ["·······A···F", "·······A···F", "·······A····"]
    times = tshark(pcap, "-T", "fields", "-e", "frame.time_epoch")
    assert times[0].startswith("100.000000") and times[-1].startswith("101.100000")
