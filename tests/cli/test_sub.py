"""``m2mhub sub`` run as a subprocess, side by side with the real mosquitto_sub."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.cli_support import (
    normalise,
    replace_tool_name,
    run_tool,
    scripted_peer,
    start_tool,
)
from tests.support import Proc, free_tcp_port, mosquitto_broker, require, running, wait_tcp

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with mosquitto_broker(tmp_path_factory.mktemp("sub")) as (_, port):
        yield port


def pub(port: int, topic: str, *args: str) -> None:
    done = run_tool("mosquitto_pub", "-p", str(port), "-t", topic, *args)
    assert done.code == 0, done.err


def start_sub(port: int, *args: str) -> Proc:
    """``m2mhub sub -d ...``, returned once its SUBACK has arrived."""
    proc = start_tool("sub", "-d", "-p", str(port), *args)
    try:
        proc.wait_for_line("Subscribed (mid:")
    except BaseException:
        proc.stop()
        raise
    return proc


def printed(proc: Proc) -> list[str]:
    """What the subscriber printed apart from its debug lines."""
    return [line for line in proc.lines if not line.startswith(("Client ", "Subscribed "))]


def both(*args: str) -> tuple[list[str], list[str]]:
    """Normalised output of mosquitto_sub and m2mhub sub; exit codes and stderr must agree."""
    theirs = run_tool("mosquitto_sub", *args)
    ours = run_tool("sub", *args)
    assert (ours.code, ours.err) == (theirs.code, theirs.err)
    return normalise(theirs.lines), normalise(ours.lines)


@pytest.mark.parametrize(
    "extra",
    [
        ["-q", "0", "-v"],
        ["-q", "1", "-v"],
        ["-q", "2"],
        ["-q", "1", "-V", "5", "-v"],
        ["-q", "1", "-V", "31"],
        ["-q", "2", "-N"],
        ["-q", "1", "-F", "%t|%q|%r|%l|%p|%x"],
        ["-q", "1", "-F", "[%-20t][%15p][%015p][%3l][%5q][%5r]\\t%%"],
        ["-q", "1", "-t", "sub/debug/other", "-t", "sub/+/never", "-v"],
    ],
)
def test_debug_output_for_retained_message_matches_mosquitto_sub(
    port: int, extra: list[str]
) -> None:
    pub(port, "sub/debug/retained", "-m", "kept message", "-r", "-q", "1")
    theirs, ours = both("-d", "-p", str(port), "-t", "sub/debug/#", "-C", "1", *extra)
    assert ours == theirs
    assert "Client <id> received PUBLISH (d0, q" in "\n".join(ours)
    assert ours[-1].endswith("sending DISCONNECT")  # with -N the payload shares its line


@pytest.mark.parametrize(
    "extra",
    [["-W", "1"], ["-E"], ["-E", "-U", "sub/x", "-U", "sub/y"], ["-E", "-V", "5", "-q", "2"]],
)
def test_timeout_and_exit_after_subscribe_match_mosquitto_sub(port: int, extra: list[str]) -> None:
    theirs, ours = both("-d", "-p", str(port), "-t", "sub/quiet/none", *extra)
    assert ours == theirs


def test_timeout_exit_code_and_message(port: int) -> None:
    result = run_tool("sub", "-p", str(port), "-t", "sub/quiet/timeout", "-W", "1")
    assert (result.code, result.err, result.out) == (27, "Timed out\n", "")


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_receives_live_messages_at_each_qos(port: int, qos: int) -> None:
    topic = f"sub/live/{qos}"
    sub = start_sub(port, "-t", topic, "-q", "2", "-v", "-C", "2")
    try:
        pub(port, topic, "-m", "first", "-q", str(qos))
        pub(port, topic, "-n", "-q", str(qos))
        assert sub.wait() == 0
    finally:
        sub.stop()
    assert printed(sub) == [f"{topic} first", f"{topic} (null)"]
    assert f"received PUBLISH (d0, q{qos}, r0, m{1 if qos else 0}, '{topic}'" in sub.output()


@pytest.mark.parametrize("version", ["311", "5", "31"])
def test_persistent_session_receives_queued_messages(port: int, version: str) -> None:
    topic = f"sub/persistent/{version}"
    ident = ["-i", f"persist-sub-{version}", "-c", "-q", "1", "-V", version]
    first = run_tool("sub", "-p", str(port), "-t", topic, *ident, "-E")
    assert first.code == 0, first.err
    pub(port, topic, "-m", "while away 1", "-q", "1")
    pub(port, topic, "-m", "while away 2", "-q", "2")
    pub(port, topic, "-m", "qos0 is not queued", "-q", "0")
    again = run_tool("sub", "-p", str(port), "-t", topic, *ident, "-C", "2", "-W", "5")
    assert (again.code, again.lines) == (0, ["while away 1", "while away 2"])
    # End the session so that a rerun starts clean.
    run_tool("sub", "-p", str(port), "-t", topic, "-i", f"persist-sub-{version}", "-E")


def test_no_retained_and_filter_out(port: int) -> None:
    pub(port, "sub/filter/old", "-m", "stale", "-r")
    sub = start_sub(port, "-t", "sub/filter/#", "-v", "-R", "-T", "sub/filter/skip/#", "-C", "1")
    try:
        pub(port, "sub/filter/skip/this", "-m", "filtered")
        pub(port, "sub/filter/new", "-m", "fresh")
        assert sub.wait() == 0
    finally:
        sub.stop()
    assert printed(sub) == ["sub/filter/new fresh"]
    pub(port, "sub/filter/old", "-n", "-r")


@pytest.mark.parametrize("tool", ["mosquitto_sub", "sub"])
def test_remove_retained(port: int, tool: str) -> None:
    topic = f"sub/clean/{tool}"
    pub(port, topic, "-m", "A", "-r")
    # -W, not -C: mosquitto_sub 2.0.11 with -C and --remove-retained never exits (it waits for
    # an acknowledgement it has already seen).
    result = run_tool(tool, "-p", str(port), "-t", topic, "-v", "--remove-retained", "-W", "3")
    # The clearing publish comes back too, as mosquitto_sub shows it.
    assert (result.code, result.lines) == (27, [f"{topic} A", f"{topic} (null)"])
    after = run_tool("sub", "-p", str(port), "-t", topic, "-W", "1")
    assert (after.code, after.out) == (27, "")


def test_retained_only_stops_at_the_first_live_message(port: int) -> None:
    pub(port, "sub/only/old", "-m", "stale", "-r")
    sub = start_sub(port, "-t", "sub/only/#", "-v", "--retained-only")
    try:
        pub(port, "sub/only/new", "-m", "fresh")
        assert sub.wait() == 0
    finally:
        sub.stop()
    assert printed(sub) == ["sub/only/old stale"]
    pub(port, "sub/only/old", "-n", "-r")


def test_unsubscribe_option(port: int) -> None:
    topic = "sub/unsub/persist"
    ident = ["-i", "unsub-sub", "-c", "-q", "1"]
    assert run_tool("sub", "-p", str(port), "-t", topic, *ident, "-E").code == 0
    # Reconnect to the session, subscribe to something else and unsubscribe the old filter.
    result = run_tool("sub", "-p", str(port), "-t", "sub/unsub/other", *ident, "-U", topic, "-E")
    assert result.code == 0
    pub(port, topic, "-m", "nobody wants this", "-q", "1")
    later = run_tool("sub", "-p", str(port), "-t", "sub/unsub/other", *ident, "-W", "1")
    assert (later.code, later.out) == (27, "")


def test_will_is_published_when_sub_dies(port: int) -> None:
    watcher = start_tool("mosquitto_sub", "-d", "-p", str(port), "-t", "sub/will/#", "-v")
    try:
        watcher.wait_for_line("received SUBACK")
        dying = start_sub(
            port,
            "-t",
            "sub/will/ignored",
            "--will-topic",
            "sub/will/dead",
            "--will-payload",
            "client died",
            "--will-qos",
            "1",
        )
        dying.popen.send_signal(signal.SIGKILL)
        dying.wait()
        watcher.wait_for_line("sub/will/dead client died")
    finally:
        watcher.stop()


@pytest.mark.parametrize("how", ["-E", "SIGINT", "SIGTERM"])
def test_no_will_after_a_clean_exit(port: int, how: str) -> None:
    """-E, Ctrl-C and kill all end with DISCONNECT (exit 0), so the broker drops the will."""
    watcher = start_tool("mosquitto_sub", "-d", "-p", str(port), "-t", "sub/polite/#", "-v")
    will = ["--will-topic", "sub/polite/will", "--will-payload", "should not appear"]
    try:
        watcher.wait_for_line("received SUBACK")
        if how == "-E":
            result = run_tool("sub", "-p", str(port), "-t", "sub/polite/x", "-E", *will)
            assert result.code == 0
        else:
            sub = start_sub(port, "-t", "sub/polite/x", *will)
            try:
                sub.popen.send_signal(getattr(signal, how))
                assert sub.wait() == 0
            finally:
                sub.stop()
            assert sub.lines[-1].endswith("sending DISCONNECT")
        pub(port, "sub/polite/marker", "-m", "end")
        watcher.wait_for_line("sub/polite/marker end")
        assert "should not appear" not in watcher.output()
    finally:
        watcher.stop()


@pytest.mark.parametrize("version", ["311", "5"])
def test_refused_connection_matches_mosquitto_sub(tmp_path: Path, version: str) -> None:
    with mosquitto_broker(tmp_path, ["allow_anonymous false"]) as (_, port):
        args = ["-d", "-p", str(port), "-t", "a", "-V", version]
        theirs = run_tool("mosquitto_sub", *args)
        ours = run_tool("sub", *args)
    assert ours.code == theirs.code == (135 if version == "5" else 5)
    assert ours.err == theirs.err
    assert normalise(ours.lines) == normalise(theirs.lines)


def test_unreachable_broker() -> None:
    port = str(free_tcp_port())
    theirs = run_tool("mosquitto_sub", "-p", port, "-t", "a")
    ours = run_tool("sub", "-p", port, "-t", "a")
    assert (ours.code, ours.err) == (theirs.code, theirs.err) == (1, "Error: Connection refused\n")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-t", "a", "-C", "0"],
        ["-t", "a", "-W", "0"],
        ["-t", "a/#/b"],
        ["-t", "a", "-U", "a/#/b"],
        ["-t", "a", "-T"],
        ["-t", "a", "-F"],
        ["-t", "a", "-q", "3"],
        ["-t", "a", "-R", "--retained-only"],
        ["-t", "a", "-F", "%c"],
        ["-t", "a", "-F", "100%"],
        ["-t", "a", "-D", "subscribe", "topic-alias", "1"],
        ["-t", "a", "-c"],
        ["-t", "a", "-c", "-V", "5"],
        ["-t", "a", "-c", "-I", "pre"],
        ["-t", "a", "-x", "-1", "-V", "5"],
        ["-t", "a", "-c", "-x", "10", "-V", "5"],
        ["-t", "a", "--bogus"],
    ],
)
def test_usage_errors_match_mosquitto_sub(args: list[str]) -> None:
    theirs = run_tool("mosquitto_sub", *args)
    ours = run_tool("sub", *args)
    assert ours.code == theirs.code == 1
    ours_first = ours.err.strip().splitlines()[0]
    assert ours_first == replace_tool_name(theirs.err).strip().splitlines()[0]


def test_reconnects_and_resubscribes_after_the_broker_restarts(tmp_path: Path) -> None:
    port = free_tcp_port()
    conf = tmp_path / "restart.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    mosquitto = [require("mosquitto"), "-c", str(conf)]
    with running(mosquitto) as broker:
        wait_tcp(port)
        sub = start_sub(port, "-t", "sub/restart", "-v", "-C", "2")
        try:
            pub(port, "sub/restart", "-m", "before")
            sub.wait_for_line("sub/restart before")
            broker.stop()
            with running(mosquitto):
                wait_tcp(port)
                # mosquitto_sub's behaviour: reconnect, subscribe again (a second SUBACK).
                sub.wait_for_line("Subscribed (mid:", start=sub.lines.index("sub/restart before"))
                pub(port, "sub/restart", "-m", "after")
                assert sub.wait() == 0
        finally:
            sub.stop()
    assert printed(sub) == ["sub/restart before", "sub/restart after"]


@pytest.mark.parametrize("tool", ["mosquitto_sub", "sub"])
def test_subscription_identifier_property(port: int, tool: str) -> None:
    topic = f"sub/props/{tool}"
    pub(port, topic, "-m", "x", "-r", "-D", "publish", "content-type", "a/b")
    got = run_tool(
        tool, "-p", str(port), "-t", topic, "-C", "1", "-F", "%S|%C|%t",
        "-D", "subscribe", "subscription-identifier", "7",
    )  # fmt: skip
    assert (got.code, got.lines) == (0, [f"7|a/b|{topic}"])
    pub(port, topic, "-n", "-r")


def _refuse_subscriptions(packet: bytes) -> bytes | None:
    """A broker that accepts CONNECT and refuses both filters of a SUBSCRIBE (0x80)."""
    kind = packet[0] >> 4
    if kind == 1:
        return bytes.fromhex("20020000")
    if kind == 8:
        return b"\x90\x04" + packet[2:4] + b"\x80\x80"
    return None if kind == 14 else b""


def test_all_subscriptions_refused_matches_mosquitto_sub() -> None:
    # No broker we can start refuses a subscription itself (mosquitto's ACLs grant, then filter).
    with scripted_peer(_refuse_subscriptions) as port:
        theirs, ours = both("-d", "-p", str(port), "-t", "a", "-t", "b", "-W", "5")
    assert ours == theirs
    assert "Subscribed (mid: 1): 128, 128" in ours
    assert ours[-1] == "Client <id> sending DISCONNECT"


def test_keeps_trying_when_the_broker_hangs_up_before_connack() -> None:
    with scripted_peer(lambda packet: None) as port:
        theirs, ours = both("-d", "-p", str(port), "-t", "a", "-W", "2")
    # Exit code 255 and no "Timed out" (checked by both()); the number of attempts in the
    # two seconds may differ by one.
    assert set(ours) == set(theirs) == {"Client <id> sending CONNECT"}
    assert len(ours) >= 2


def test_sub_help() -> None:
    result = run_tool("sub", "--help")
    assert result.code == 0
    assert "-W : Specifies a timeout in seconds" in result.out


@pytest.mark.parametrize("qos", ["1", "2"])
def test_message_unacknowledged_by_a_dead_subscriber_comes_again_with_dup(
    port: int, qos: str
) -> None:
    """The broker resends to the resumed session with DUP set; it is printed once."""
    topic = f"sub/dup/{qos}"
    ident = ["-i", f"dup-sub-{qos}", "-c", "-q", qos]
    frozen = start_sub(port, "-t", topic, *ident)
    try:
        frozen.popen.send_signal(signal.SIGSTOP)  # alive but reads nothing: no PUBACK/PUBREC
        pub(port, topic, "-m", "exactly this", "-q", qos)
        frozen.popen.send_signal(signal.SIGKILL)
        frozen.wait()
    finally:
        frozen.stop()
    again = run_tool("sub", "-d", "-p", str(port), "-t", topic, *ident, "-C", "1", "-W", "5")
    assert again.code == 0, again.err
    assert f"received PUBLISH (d1, q{qos}, r0, m1, '{topic}', ... (12 bytes))" in again.out
    assert [line for line in again.lines if not line.startswith(("Client", "Subscribed"))] == [
        "exactly this"
    ]
    run_tool("sub", "-p", str(port), "-t", topic, "-i", f"dup-sub-{qos}", "-E")


@pytest.mark.parametrize("qos", ["0", "1"])
def test_json_format_matches_mosquitto_sub(port: int, qos: str) -> None:
    pub(port, "sub/json/a", "-m", '{"t": 21.5}', "-r", "-q", "1")
    records = []
    for tool in ("mosquitto_sub", "sub"):
        for fmt in ("%j", "%J"):
            got = run_tool(
                tool, "-p", str(port), "-t", "sub/json/#", "-q", qos, "-C", "1", "-F", fmt
            )
            assert got.code == 0, got.err
            record = json.loads(got.out)
            assert record.pop("tst")  # the time differs
            records.append(record)
    assert records[0] == records[2]
    assert records[1] == records[3]
    assert records[1]["payload"] == {"t": 21.5}
    pub(port, "sub/json/a", "-n", "-r")
