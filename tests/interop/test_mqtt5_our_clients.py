"""Our ``pub``/``sub -V 5`` beside mosquitto_pub/sub, against a real mosquitto and m2mhub serve:
what a subscriber receives from each publisher, Retain As Published, session expiry (``-x``)
and will properties. Each expectation holds for mosquitto's clients first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.client.cli_support import ENV, normalise
from tests.interop.conftest import BROKERS, Broker, start_broker
from tests.interop.test_mqtt5_sub_format import PROPERTIES, publish, run, start
from tests.support import M2MHUB, Proc, require

pytestmark = pytest.mark.interop

PUBS = ["mosquitto_pub", "pub"]
SUBS = ["mosquitto_sub", "sub"]


@pytest.fixture(scope="module", params=BROKERS)
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    with start_broker(str(request.param), tmp_path_factory.mktemp("ours5")) as running:
        yield running


def command(tool: str) -> list[str]:
    return [require(tool)] if tool.startswith("mosquitto") else [*M2MHUB, tool]


def unique(prefix: str) -> str:
    return f"ours5/{prefix}/{uuid.uuid4().hex[:8]}"


def received(broker: Broker, sub_args: list[str], publish_args: list[list[str]]) -> list[list[str]]:
    """What mosquitto_sub and m2mhub sub, subscribed side by side, print for the publishes."""
    subs = [start(tool, broker.port, *sub_args) for tool in SUBS]
    try:
        for args in publish_args:
            done = run(args[0], "-p", str(broker.port), *args[1:])
            assert done.returncode == 0, done.stderr
        lines = []
        for proc in subs:
            assert proc.wait() == 0
            lines.append([line for line in proc.lines if line.startswith("MSG ")])
    finally:
        for proc in subs:
            proc.stop()
    return lines


def test_properties_from_either_publisher_reach_either_subscriber(broker: Broker) -> None:
    topic = unique("props")
    fmt = "MSG %t|%p|%P|%C|%D|%R|%F|%E|%S|%q|%r"
    sub_args = ["-V", "5", "-q", "2", "-t", topic, "-F", fmt, "-C", "2"]
    sub_args += ["-D", "subscribe", "subscription-identifier", "9"]
    expiry = ["-D", "publish", "message-expiry-interval", "3600"]
    sends = [
        [tool, "-V", "5", "-q", "1", "-t", topic, "-m", tool, *PROPERTIES, *expiry] for tool in PUBS
    ]
    theirs, ours = received(broker, sub_args, sends)
    assert ours == theirs
    common = "k1:v1 k0:v0 k1:v2|text/plain|corr|resp/t|1|3600|9|1|0"
    assert theirs == [f"MSG {topic}|{tool}|{common}" for tool in PUBS]


@pytest.mark.parametrize("flag", [[], ["--retain-as-published"]])
def test_retain_as_published(broker: Broker, flag: list[str]) -> None:
    topic = unique("rap")
    sub_args = ["-V", "5", "-q", "1", "-t", topic, "-F", "MSG %p|%r", "-C", "1", *flag]
    send = [["pub", "-V", "5", "-q", "1", "-r", "-t", topic, "-m", "live"]]
    try:
        theirs, ours = received(broker, sub_args, send)
    finally:
        publish(broker.port, topic, "-r", "-n")
    assert ours == theirs == [f"MSG live|{1 if flag else 0}"]


@pytest.mark.parametrize(("expiry", "kept"), [("0", False), ("600", True), ("-1", True)])
@pytest.mark.parametrize("tool", SUBS)
def test_session_expiry_decides_whether_messages_wait(
    broker: Broker, tool: str, expiry: str, kept: bool
) -> None:
    """``-c -x N``: a session that expires at once (0) keeps nothing; one that lasts does."""
    topic = unique("expiry")
    client_id = f"x-{uuid.uuid4().hex[:8]}"
    session = ["-V", "5", "-q", "1", "-c", "-i", client_id, "-x", expiry, "-t", topic]
    first = run(tool, "-p", str(broker.port), *session, "-E")
    assert first.returncode == 0, first.stderr
    publish(broker.port, topic, "-V", "5", "-q", "1", "-m", "while away")
    again_args = [*session, "-C", "1", "-F", "MSG %p"]
    if kept:  # the queued message comes at once, maybe before the SUBACK, and ends it
        again = Proc([*command(tool), "-p", str(broker.port), *again_args], env=ENV)
    else:  # nothing queued: the first message is one published after subscribing
        again = start(tool, broker.port, *again_args)
    try:
        if not kept:
            publish(broker.port, topic, "-V", "5", "-q", "1", "-m", "after")
        assert again.wait() == 0
    finally:
        again.stop()
        run(tool, "-p", str(broker.port), "-V", "5", "-i", client_id, "-t", topic, "-E")
    printed = [line for line in again.lines if line.startswith("MSG ")]
    assert printed == ["MSG while away" if kept else "MSG after"]


@pytest.mark.parametrize("tool", SUBS)
def test_will_properties_are_published(broker: Broker, tool: str) -> None:
    topic = unique("will")
    watch_args = ["-V", "5", "-t", topic, "-F", "MSG %p|%C|%P|%R", "-C", "1"]
    watcher = start("sub", broker.port, *watch_args)
    dying = start(
        tool, broker.port, "-V", "5", "-t", unique("nothing"),
        "--will-topic", topic, "--will-payload", "gone",
        "-D", "will", "content-type", "text/x", "-D", "will", "user-property", "a", "b",
        "-D", "will", "response-topic", "r",
    )  # fmt: skip
    try:
        dying.popen.kill()  # no DISCONNECT: the broker publishes the will
        dying.wait()
        assert watcher.wait() == 0
    finally:
        dying.stop()
        watcher.stop()
    assert [line for line in watcher.lines if line.startswith("MSG ")] == ["MSG gone|text/x|a:b|r"]


def test_a_publisher_topic_alias_names_the_topic_once(broker: Broker) -> None:
    """``-D publish topic-alias 1`` with ``--repeat``: the first PUBLISH names the topic, the
    others carry the alias alone (``'(null)'`` in the debug lines); subscribers get the topic."""
    topic = unique("pubalias")
    sub_args = ["-V", "5", "-q", "1", "-t", topic, "-F", "MSG %t|%p", "-C", "6"]
    alias = ["-D", "publish", "topic-alias", "1", "--repeat", "3", "-q", "1"]
    sends = [[tool, "-V", "5", "-t", topic, "-m", tool, *alias] for tool in PUBS]
    theirs, ours = received(broker, sub_args, sends)
    assert ours == theirs == [f"MSG {topic}|{tool}" for tool in PUBS for _ in range(3)]
    debug = []
    for tool in PUBS:
        done = run(tool, "-p", str(broker.port), "-d", "-V", "5", "-t", topic, "-m", "x", *alias)
        assert done.returncode == 0, done.stderr
        debug.append(normalise(done.stdout.decode().splitlines()))
    assert debug[1] == debug[0]
    published = [line for line in debug[0] if "sending PUBLISH" in line]
    assert [f"'{topic}'" in published[0], "'(null)'" in published[1]] == [True, True]


@pytest.mark.parametrize("broker", ["m2mhub"], indirect=True)  # mosquitto sends no DISCONNECT
@pytest.mark.parametrize("tool", [*SUBS, *PUBS])
def test_a_broker_disconnect_ends_the_client_quietly(broker: Broker, tool: str) -> None:
    """Taken over, the old connection gets DISCONNECT 0x8E from m2mhub: mosquitto_sub and
    mosquitto_pub log libmosquitto's ``Received DISCONNECT (142)`` and do not reconnect; the
    subscriber exits 0, the publisher's next ``--repeat`` fails (exit 4); ours alike.
    (mosquitto 2.0.11 closes a taken-over connection without a DISCONNECT.)"""
    client_id = f"tk-{uuid.uuid4().hex[:8]}"
    topic = unique("takeover")
    if tool.endswith("sub"):
        proc = start(tool, broker.port, "-V", "5", "-i", client_id, "-t", topic)
    else:
        argv = [*command(tool)] if tool == "pub" else [require("stdbuf"), "-oL", require(tool)]
        proc = Proc(
            [*argv, "-p", str(broker.port), "-d", "-V", "5", "-i", client_id, "-t", topic,
             "-m", "x", "--repeat", "400", "--repeat-delay", "0.05"],
            env=ENV,
        )  # fmt: skip
        proc.wait_for_line("sending PUBLISH")
    try:
        run("mosquitto_sub", "-p", str(broker.port), "-V", "5", "-i", client_id, "-t", "x", "-E")
        # mosquitto_pub --repeat goes on to publish on the closed connection: exit 4.
        assert proc.wait() == (4 if tool.endswith("pub") else 0)
    finally:
        proc.stop()
    if tool.endswith("pub"):
        assert proc.lines[-1] == "Error: The client is not currently connected."
        assert proc.lines[-2] == "Received DISCONNECT (142)"
        return
    assert proc.lines[-1] == "Received DISCONNECT (142)"
    assert not [line for line in proc.lines if "Error" in line or "sending CONNECT" in line][1:]
