"""MQTT 5 subscription features with mosquitto_sub/mosquitto_pub, mosquitto and m2mhub alike."""

from __future__ import annotations

import pytest

from tests.interop.cli import interrupt, pub, start_sub, until_sentinel
from tests.interop.conftest import Broker

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("version", ["5", "311"])
def test_shared_subscription_splits_messages(broker: Broker, version: str) -> None:
    args = ["-V", version, "-q", "1", "-t", "$share/g/ms/t", "-t", "ms/done"]
    a = start_sub(broker.port, "-i", "a", *args)
    b = start_sub(broker.port, "-i", "b", *args)
    try:
        sent = [f"m{i}" for i in range(6)]
        for payload in sent:
            pub(broker.port, "-V", version, "-q", "1", "-t", "ms/t", "-m", payload)
        got_a = [m.payload for m in until_sentinel(broker.port, a, "ms/done") if m.topic == "ms/t"]
        got_b = [m.payload for m in until_sentinel(broker.port, b, "ms/done") if m.topic == "ms/t"]
        assert sorted(got_a + got_b) == sorted(sent)
        assert got_a and got_b
    finally:
        interrupt(a)
        interrupt(b)


@pytest.mark.parametrize("rap", [False, True])
def test_retain_as_published(broker: Broker, rap: bool) -> None:
    flags = ["--retain-as-published"] if rap else []
    sub = start_sub(broker.port, "-V", "5", "-q", "1", "-t", "mrap/t", *flags)
    try:
        pub(broker.port, "-V", "5", "-q", "1", "-r", "-t", "mrap/t", "-m", "live")
        got = until_sentinel(broker.port, sub, "mrap/t")
        assert [(m.payload, m.retain) for m in got] == [("live", rap)]
    finally:
        interrupt(sub)
        pub(broker.port, "-V", "5", "-r", "-n", "-t", "mrap/t")
