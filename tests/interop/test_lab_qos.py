"""The lab's five QoS/persistence experiments, run on a real mosquitto and on m2mhub side by side.

Each experiment is the lab's sequence of commands: subscribe (``mosquitto_sub -h localhost -i Sub1
-t test/message -q Q [-c]``), Ctrl-C, publish (``mosquitto_pub -t test/message -m "MESSAGE n" -q
Q``), run the subscriber again and note what arrives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.cli import Msg, interrupt, pub, start_sub, subscribe_and_leave, until_sentinel
from tests.interop.conftest import start_broker

pytestmark = pytest.mark.interop

TOPIC = "test/message"

# (number, subscriber QoS, persistent session (-c), publisher QoS, what the subscriber gets back)
EXPERIMENTS = [
    (1, 0, False, 0, []),
    (2, 1, True, 1, [Msg(False, 1, TOPIC, "MESSAGE 2")]),
    (3, 1, True, 0, []),  # QoS 0 is not queued for an offline client
    (4, 0, True, 1, []),  # delivered at min(1, 0) = QoS 0, so not queued either
    (5, 2, True, 2, [Msg(False, 2, TOPIC, "MESSAGE 5")]),
]


def run_experiment(port: int, n: int, sub_qos: int, persistent: bool, pub_qos: int) -> list[Msg]:
    sub_args = ["-h", "localhost", "-i", "Sub1", "-t", TOPIC, "-q", str(sub_qos)]
    if persistent:
        sub_args.append("-c")
    subscribe_and_leave(port, *sub_args)  # subscribe, then Ctrl-C
    pub(port, "-h", "localhost", "-t", TOPIC, "-m", f"MESSAGE {n}", "-q", str(pub_qos))
    again = start_sub(port, *sub_args)
    try:
        return until_sentinel(port, again, TOPIC)
    finally:
        interrupt(again)


@pytest.mark.parametrize(
    ("n", "sub_qos", "persistent", "pub_qos", "expected"),
    EXPERIMENTS,
    ids=[f"test{e[0]}" for e in EXPERIMENTS],
)
def test_lab_qos_experiment(
    tmp_path: Path, n: int, sub_qos: int, persistent: bool, pub_qos: int, expected: list[Msg]
) -> None:
    results = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path) as broker:
            results[kind] = run_experiment(broker.port, n, sub_qos, persistent, pub_qos)
    assert results["mosquitto"] == expected
    assert results["m2mhub"] == results["mosquitto"]
