"""``m2mhub pub`` run as a subprocess, side by side with the real mosquitto_pub."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.cli_support import (
    ENV,
    Responder,
    normalise,
    replace_tool_name,
    run_tool,
    scripted_peer,
    start_tool,
)
from tests.support import M2MHUB, free_tcp_port, mosquitto_broker, require

pytestmark = pytest.mark.interop

# Started as root, mosquitto drops to user "mosquitto", who cannot read pytest's 0700 temporary
# directories; "user root" keeps it root. (Not root: it runs as us and reads them anyway.)
RUN_AS = ["user root"] if os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with mosquitto_broker(tmp_path_factory.mktemp("pub")) as (_, port):
        yield port


def both(*args: str, stdin: bytes | None = None) -> tuple[list[str], list[str]]:
    """``-d`` output of mosquitto_pub and m2mhub pub with the same arguments, normalised."""
    theirs = run_tool("mosquitto_pub", *args, stdin=stdin)
    ours = run_tool("pub", *args, stdin=stdin)
    assert (ours.code, ours.err) == (theirs.code, theirs.err)
    return normalise(theirs.lines), normalise(ours.lines)


@pytest.mark.parametrize(
    "extra",
    [
        ["-q", "0"],
        ["-q", "1"],
        ["-q", "2", "-r"],
        ["-q", "1", "-V", "5"],
        ["-q", "2", "-V", "mqttv5"],
        ["-q", "1", "-V", "31"],
        ["-q", "1", "-V", "mqttv311"],
        ["-q", "1", "-i", "pubtest", "-c"],
        ["-q", "1", "-I", "prefix-"],
        ["-q", "1", "--repeat", "3"],
        ["-q", "1", "--will-topic", "pub/will", "--will-payload", "x", "--will-qos", "1"],
    ],
)
def test_debug_output_matches_mosquitto_pub(port: int, extra: list[str]) -> None:
    theirs, ours = both("-d", "-p", str(port), "-t", "test/message", "-m", "MESSAGE 1", *extra)
    assert ours == theirs
    assert ours[0] == "Client <id> sending CONNECT"
    assert ours[-1] == "Client <id> sending DISCONNECT"


def test_debug_output_for_null_file_and_stdin_messages(port: int, tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"\x00\x01file contents")
    common = ["-d", "-p", str(port), "-t", "pub/modes"]
    for args, stdin in (
        (["-n"], None),
        (["-f", str(payload)], None),
        (["-s"], b"whole\nstdin\n"),
        (["-l"], b"one\ntwo\n\nfour"),
    ):
        theirs, ours = both(*common, *args, stdin=stdin)
        assert ours == theirs, args


def test_stdin_lines_at_qos1_send_and_ack_every_line(port: int) -> None:
    # Acks may interleave with sends differently from run to run: compare as sets.
    args = ["-d", "-p", str(port), "-t", "pub/lines", "-q", "1", "-l"]
    theirs, ours = both(*args, stdin=b"a\nbb\nccc\n")
    assert sorted(ours) == sorted(theirs)
    assert sum("sending PUBLISH" in line for line in ours) == 3


def test_messages_arrive_at_mosquitto_sub(port: int, tmp_path: Path) -> None:
    payload = tmp_path / "p.txt"
    payload.write_bytes(b"from a file")
    cases = [
        (["-m", "plain", "-q", "1"], "plain"),
        (["-f", str(payload)], "from a file"),
    ]
    for n, (args, printed) in enumerate(cases):
        topic = f"pub/arrive/{n}"
        assert run_tool("pub", "-p", str(port), "-t", topic, "-r", *args).code == 0
        result = run_tool("mosquitto_sub", "-p", str(port), "-t", topic, "-v", "-C", "1", "-W", "5")
        assert result.lines == [f"{topic} {printed}"]
        run_tool("pub", "-p", str(port), "-t", topic, "-r", "-n")  # clear the retained one


def test_retained_message_stays_on_the_broker(port: int) -> None:
    topic = "pub/retained"
    assert run_tool("pub", "-p", str(port), "-t", topic, "-m", "kept", "-r", "-q", "1").code == 0
    for _ in range(2):
        got = run_tool("mosquitto_sub", "-p", str(port), "-t", topic, "-C", "1", "-F", "%r %p")
        assert got.lines == ["1 kept"]


def test_lines_mode_sends_one_message_per_line(port: int) -> None:
    topic = "pub/lines/arrive"
    sub = start_tool("mosquitto_sub", "-d", "-p", str(port), "-t", topic, "-v", "-C", "3")
    try:
        sub.wait_for_line("received SUBACK")
        result = run_tool("pub", "-p", str(port), "-t", topic, "-l", "-q", "1", stdin=b"a\n\nc")
        assert result.code == 0
        assert sub.wait() == 0
    finally:
        sub.stop()
    printed = [line for line in sub.lines if not line.startswith(("Client ", "Subscribed"))]
    assert printed == [f"{topic} a", f"{topic} (null)", f"{topic} c"]


@pytest.mark.parametrize("version", ["311", "5", "31"])
def test_refused_connection_matches_mosquitto_pub(tmp_path: Path, version: str) -> None:
    with mosquitto_broker(tmp_path, ["allow_anonymous false"]) as (_, port):
        args = ["-d", "-p", str(port), "-t", "a", "-m", "b", "-V", version]
        theirs = run_tool("mosquitto_pub", *args)
        ours = run_tool("pub", *args)
    assert ours.code == theirs.code == (135 if version == "5" else 5)
    assert ours.err == theirs.err
    assert normalise(ours.lines) == normalise(theirs.lines)
    assert "Connection error: " in ours.err


def test_username_and_password_reach_the_broker(tmp_path: Path) -> None:
    # mosquitto reads the password file after dropping root for its own user, so the file
    # must not sit under pytest's private (0700) temporary directory.
    shared = Path(tempfile.mkdtemp(prefix="m2mhub-passwd-"))
    shared.chmod(0o755)
    passwd = shared / "passwd"
    passwd.write_text("")
    done = run_tool("mosquitto_passwd", "-b", str(passwd), "alice", "secret")
    assert done.code == 0, done.err
    with mosquitto_broker(tmp_path, ["allow_anonymous false", f"password_file {passwd}"]) as (
        _,
        port,
    ):
        ok = run_tool("pub", "-p", str(port), "-t", "a", "-m", "b", "-u", "alice", "-P", "secret")
        assert (ok.code, ok.err) == (0, "")
        bad = run_tool("pub", "-p", str(port), "-t", "a", "-m", "b", "-u", "alice", "-P", "nope")
        theirs = run_tool(
            "mosquitto_pub", "-p", str(port), "-t", "a", "-m", "b", "-u", "alice", "-P", "nope"
        )
        assert (bad.code, bad.err) == (theirs.code, theirs.err)
        assert bad.code == 5
    shutil.rmtree(shared)


def test_unreachable_broker() -> None:
    port = str(free_tcp_port())
    theirs = run_tool("mosquitto_pub", "-p", port, "-t", "a", "-m", "b")
    ours = run_tool("pub", "-p", port, "-t", "a", "-m", "b")
    assert (ours.code, ours.err) == (theirs.code, theirs.err) == (1, "Error: Connection refused\n")
    quiet = run_tool("pub", "--quiet", "-p", port, "-t", "a", "-m", "b")
    assert (quiet.code, quiet.err) == (1, "")


@pytest.mark.parametrize(
    "args",
    [
        ["-t", "a", "-m", "x", "-q", "3"],
        ["-t", "a/#", "-m", "x"],
        ["-t", "a", "-m", "x", "-n"],
        ["-t", "a", "-m", "x", "-c"],
        ["-t", "a", "-m", "x", "-c", "-V", "5"],
        ["-t", "a", "-m", "x", "-c", "-I", "pre"],
        ["-t", "a", "-m", "x", "-c", "-I", "pre", "-V", "5"],
        ["-t", "a", "-m", "x", "-x", "-1", "-V", "5"],
        ["-t", "a", "-m", "x", "-c", "-x", "10", "-V", "5"],
        ["-t", "a", "-m", "x", "-i", "x", "-I", "y"],
        ["-t", "a", "-m", "x", "-k", "4"],
        ["-t", "a", "-m", "x", "-V", "4"],
        ["-t", "a", "-m", "x", "-p", "70000"],
        ["-t", "a", "-m", "x", "-q"],
        ["-t", "a", "-m", "x", "--will-payload", "p"],
        ["-t", "a", "-m", "x", "--will-retain"],
        ["-t", "a", "-m", "x", "--will-topic", "w/+"],
        ["-t", "a", "-m", "x", "--repeat", "0"],
        ["-t", "a", "-m", "x", "-M", "0"],
        ["-t", "a", "-m", "x", "-z"],
        ["-t", "a", "-f", "/nonexistent/file"],
        ["-m", "x"],
    ],
)
def test_usage_errors_match_mosquitto_pub(args: list[str]) -> None:
    theirs = run_tool("mosquitto_pub", *args)
    ours = run_tool("pub", *args)
    assert ours.code == theirs.code == 1
    assert ours.err.splitlines()[0] == replace_tool_name(theirs.err).splitlines()[0]


def test_help_and_unsupported_options() -> None:
    help_text = run_tool("pub", "--help")
    assert help_text.code == 0 and "-t : mqtt topic to publish to." in help_text.out
    tls = run_tool("pub", "-t", "a", "-m", "b", "--cafile", "x")
    assert tls.code == 1 and "not supported yet" in tls.err
    require("mosquitto_pub")


def test_connect_error_text_for_several_addresses() -> None:
    from m2mhub.cli._mqtt_options import connect_error_text

    several = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 1)"
    )
    assert connect_error_text(several) == "Error: Connection refused"
    assert connect_error_text(ConnectionRefusedError(111, "x")) == "Error: Connection refused"


PUBLISH_PROPERTIES = [
    *("-D", "publish", "user-property", "k", "v"),
    *("-D", "publish", "user-property", "k2", "v2"),
    *("-D", "publish", "content-type", "text/plain"),
    *("-D", "publish", "correlation-data", "abc"),
    *("-D", "publish", "response-topic", "r/t"),
    *("-D", "publish", "payload-format-indicator", "1"),
    *("-D", "connect", "session-expiry-interval", "30"),
    *("-D", "will", "user-property", "w", "x"),
]


@pytest.mark.parametrize("tool", ["mosquitto_pub", "pub"])
def test_mqtt5_properties_reach_a_subscriber(port: int, tool: str) -> None:
    topic = f"pub/props/{tool}"
    # -D implies MQTT 5, as with mosquitto_pub.
    sent = run_tool(tool, "-p", str(port), "-t", topic, "-m", "x", "-r", *PUBLISH_PROPERTIES)
    assert sent.code == 0, sent.err
    got = run_tool(
        "mosquitto_sub", "-p", str(port), "-t", topic, "-V", "5", "-C", "1",
        "-F", "%C|%D|%F|%P|%R",
    )  # fmt: skip
    assert got.lines == ["text/plain|abc|1|k:v k2:v2|r/t"]
    run_tool("pub", "-p", str(port), "-t", topic, "-n", "-r")


def test_debug_output_with_properties_matches_mosquitto_pub(port: int) -> None:
    theirs, ours = both("-d", "-p", str(port), "-t", "pub/props/d", "-m", "x", *PUBLISH_PROPERTIES)
    assert ours == theirs
    assert ours[1].startswith("Client auto-") or ours[1] == "Client <id> received CONNACK (0)"


@pytest.mark.parametrize(
    "args",
    [
        ["-D", "publish", "user-property", "a"],
        ["-D", "publish", "foo", "1"],
        ["-D", "foo", "user-property", "a", "b"],
        ["-D", "connect", "topic-alias", "1"],
        ["-D", "publish"],
    ],
)
def test_property_errors_match_mosquitto_pub(args: list[str]) -> None:
    theirs = run_tool("mosquitto_pub", "-t", "a", "-m", "x", *args)
    ours = run_tool("pub", "-t", "a", "-m", "x", *args)
    assert ours.code == theirs.code == 1
    assert ours.err.splitlines()[0] == theirs.err.splitlines()[0]


def _hang_up_before_connack(packet: bytes) -> bytes | None:
    return None


def _hang_up_on_publish(packet: bytes) -> bytes | None:
    kind = packet[0] >> 4
    return bytes.fromhex("20020000") if kind == 1 else None


@pytest.mark.parametrize("respond", [_hang_up_before_connack, _hang_up_on_publish])
def test_connection_lost_matches_mosquitto_pub(respond: Responder) -> None:
    with scripted_peer(respond) as port:
        args = ["-d", "-p", str(port), "-t", "a", "-m", "x", "-q", "1"]
        theirs = run_tool("mosquitto_pub", *args)
        ours = run_tool("pub", *args)
    assert (
        (ours.code, ours.err)
        == (theirs.code, theirs.err)
        == (
            7,
            "Error: The connection was lost.\n",
        )
    )
    assert ours.lines == theirs.lines


def test_url_and_bind_address_options(port: int) -> None:
    topic = "pub/url"
    url = f"mqtt://127.0.0.1:{port}/{topic}"
    sent = run_tool("pub", "-L", url, "-A", "127.0.0.1", "-m", "via url", "-r", "-q", "1")
    assert (sent.code, sent.err) == (0, "")
    got = run_tool("sub", "-L", url, "-C", "1", "-v", "-W", "5")
    assert (got.code, got.lines) == (0, [f"{topic} via url"])
    run_tool("pub", "-L", url, "-n", "-r")


def test_unix_socket(tmp_path: Path) -> None:
    sockdir = Path(tempfile.mkdtemp(prefix="m2mhub-unix-"))  # short: AF_UNIX paths are short
    path = sockdir / "mqtt.sock"
    try:
        with mosquitto_broker(tmp_path, [f"listener 0 {path}", *RUN_AS]):
            theirs, ours = both("-d", "--unix", str(path), "-t", "pub/unix", "-m", "x", "-q", "1")
            assert ours == theirs
            assert ours[3] == "Client <id> received PUBACK (Mid: 1, RC:0)"
        missing = run_tool("pub", "--unix", str(path), "-t", "a", "-m", "x")
        assert (missing.code, missing.err) == (1, "Error: No such file or directory\n")
    finally:
        shutil.rmtree(sockdir)


@pytest.mark.parametrize("qos", ["1", "2"])
def test_publish_refused_by_acl_warns_like_mosquitto_pub(tmp_path: Path, qos: str) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read #\n")  # anonymous may read, not write
    with mosquitto_broker(tmp_path, [f"acl_file {acl}", *RUN_AS]) as (_, port):
        theirs, ours = both("-d", "-p", str(port), "-t", "x", "-m", "y", "-q", qos, "-V", "5")
        plain = run_tool("pub", "-p", str(port), "-t", "x", "-m", "y", "-q", qos, "-V", "5")
    assert ours == theirs
    assert (plain.code, plain.err) == (0, "Warning: Publish 1 failed: Not authorized.\n")


def test_ctrl_c_ends_lines_mode_while_stdin_is_open(port: int) -> None:
    """Ctrl-C must not wait for the next line from a terminal (or pipe) that stays open."""
    proc = subprocess.Popen(
        [*M2MHUB, "pub", "-d", "-p", str(port), "-t", "pub/ctrlc", "-l"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=ENV,
        # A background job may inherit SIGINT ignored; a terminal's Ctrl-C is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"one\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if b"sending PUBLISH" in line:
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
    finally:
        proc.kill()
        proc.wait()


def test_empty_stdin_is_refused_before_connecting_as_by_mosquitto_pub() -> None:
    theirs = run_tool("mosquitto_pub", "-p", "1", "-t", "a", "-s", stdin=b"")
    ours = run_tool("pub", "-p", "1", "-t", "a", "-s", stdin=b"")
    assert (
        (ours.code, ours.err)
        == (theirs.code, theirs.err)
        == (
            1,
            "Error: Zero length input.\nError loading input from stdin.\n",
        )
    )


@pytest.fixture(scope="module")
def limited_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A mosquitto whose CONNACK limits 5.0 clients: Maximum QoS 1, no retain, 200 bytes."""
    config = ["max_qos 1", "retain_available false", "max_packet_size 200"]
    with mosquitto_broker(tmp_path_factory.mktemp("limits"), config) as (_, port):
        yield port


@pytest.mark.parametrize(
    ("extra", "expected_err"),
    [
        (["-m", "x", "-q", "2"], "Error: Message QoS not supported on broker, try a lower QoS.\n"),
        (["-m", "x", "-r", "-q", "1"], ""),  # sent with RETAIN cleared, as libmosquitto does
        (["-m", "x" * 300, "-q", "1"], ""),  # too large for the broker: not sent at all
    ],
)
def test_connack_limits_are_honoured_as_by_mosquitto_pub(
    limited_port: int, extra: list[str], expected_err: str
) -> None:
    theirs, ours = both("-d", "-p", str(limited_port), "-V", "5", "-t", "pub/limits", *extra)
    assert ours == theirs
    assert run_tool("pub", "-p", str(limited_port), "-V", "5", "-t", "t", *extra).err == (
        expected_err
    )
    sent = [line for line in ours if "sending PUBLISH" in line]
    if "x" * 300 in extra or expected_err:
        assert sent == []
    elif "-r" in extra:
        assert sent and "r0" in sent[0]
