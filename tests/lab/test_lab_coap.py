"""``m2mhub lab coap`` against libcoap's example server and the embedded hub."""

from __future__ import annotations

import asyncio

import pytest

from m2mhub.cli import lab as lab_cli
from m2mhub.lab.coap_lab import coap_experiments, run_coap
from tests.coap.coapapp_support import libcoap_server
from tests.support import free_udp_port


@pytest.mark.interop
def test_against_coap_server_notls() -> None:
    with libcoap_server() as port:
        outcomes = asyncio.run(run_coap(coap_experiments(), "127.0.0.1", port, None))
    assert [o.name for o in outcomes if not o.matches] == []
    assert outcomes[2].actual == "empty ACK; CON 2.05 separate"
    observe = outcomes[3].recording.arrows
    assert observe[0].label.startswith("CON GET") and "Observe=0" in observe[0].label
    assert any("Observe=1" in a.label for a in observe if a.src == "client")


def test_embedded_hub(capsys: pytest.CaptureFixture[str]) -> None:
    assert lab_cli.run(["coap"]) == 0
    captured = capsys.readouterr()
    assert "5 experiments, all as the specification says" in captured.out
    assert "[5/5] block-wise transfer ... ok" in captured.err


def test_unreachable_server_is_an_error_row() -> None:
    """Nothing listens: the ICMP port-unreachable ends the request at once, the row says so."""
    experiments = coap_experiments()[:1]
    outcomes = asyncio.run(run_coap(experiments, "127.0.0.1", free_udp_port(), None))
    assert outcomes[0].error is not None
    assert not outcomes[0].matches
