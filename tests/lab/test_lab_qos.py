"""``m2mhub lab qos`` on the embedded broker and on a real mosquitto: same results, all as the
specification says; a broker configured against the rules is caught."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from m2mhub.cli import lab as lab_cli
from m2mhub.lab.embedded import embedded_hub
from m2mhub.lab.mqtt_lab import run_qos
from m2mhub.lab.results import Outcome
from tests.support import free_tcp_port, m2mhub_broker, mosquitto_broker


def rows(outcomes: list[Outcome]) -> list[tuple[str, str, str, str]]:
    return [(o.name, o.settings, o.expected, o.actual) for o in outcomes]


async def on_embedded() -> list[Outcome]:
    async with embedded_hub() as (port, _):
        return await run_qos("127.0.0.1", port)


def test_embedded_broker_matches_the_specification() -> None:
    outcomes = asyncio.run(on_embedded())
    assert len(outcomes) == 41
    assert [o.name for o in outcomes if not o.matches] == []
    # every packet of an experiment is recorded, with increasing timestamps
    lab2 = outcomes[1].recording
    labels = [a.label.split(" ")[0] for a in lab2.arrows]
    assert labels.count("PUBLISH") >= 3  # published, queued delivery, barrier echo
    assert {"PUBACK", "CONNECT", "CONNACK", "SUBSCRIBE", "SUBACK"} <= set(labels)
    times = [a.t for a in lab2.arrows]
    assert times == sorted(times)
    assert [g.lane for g in lab2.gaps if g.end is not None] == ["subscriber"]


@pytest.mark.interop
def test_mosquitto_gives_the_same_results(tmp_path: Path) -> None:
    with mosquitto_broker(tmp_path) as (_, port):
        theirs = asyncio.run(run_qos("127.0.0.1", port))
    ours = asyncio.run(on_embedded())
    assert rows(theirs) == rows(ours)
    assert all(o.matches for o in theirs)


def test_m2mhub_serve_matches_the_specification(tmp_path: Path) -> None:
    with m2mhub_broker(tmp_path) as (_, port):
        outcomes = asyncio.run(run_qos("127.0.0.1", port, select="matrix"))
    assert len(outcomes) == 18
    assert [o.name for o in outcomes if not o.matches] == []


@pytest.mark.interop
def test_a_broker_queueing_qos0_is_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mosquitto_broker(tmp_path, ["queue_qos0_messages true"]) as (_, port):
        code = lab_cli.run(["qos", "-q", "--port", str(port), "-k", "lab test"])
    out = capsys.readouterr().out
    assert code == 1
    marked = [line.split("  ")[1].strip() for line in out.splitlines() if line.startswith("*")]
    # messages delivered at QoS 0 are now queued for persistent subscribers
    assert marked == ["lab test 3", "lab test 4"]
    assert "'MESSAGE 3' q0" in out and "'MESSAGE 4' q0" in out


def test_cli_exit_status_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    assert lab_cli.run(["qos", "-k", "retained"]) == 0
    captured = capsys.readouterr()
    assert "6 experiments, all as the specification says" in captured.out
    assert "[1/6] retained, late subscriber ... ok (" in captured.err
    assert lab_cli.run(["qos", "--bogus"]) == 2


def test_unreachable_broker_is_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_tcp_port()  # nothing listens there
    assert lab_cli.run(["qos", "-q", "--host", "127.0.0.1", "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert captured.err == "Error: Connection refused\n"
    assert captured.out == ""
