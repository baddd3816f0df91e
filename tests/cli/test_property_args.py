"""``-D command property value`` and ``-x``: what mosquitto_pub/sub accept and refuse, and how.

mosquitto's clients are run for real (against a closed port, so an accepted command line ends
in ``Error: Connection refused``); ours are parsed in-process and their refusal printed by the
same code ``m2mhub pub``/``sub`` use, so every combination stays cheap to compare.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import subprocess

import pytest

from m2mhub.cli import pub, sub
from m2mhub.cli._args import UsageError
from m2mhub.cli._mqtt_options import report_usage_error
from tests.client.cli_support import replace_tool_name
from tests.support import require

pytestmark = pytest.mark.interop

ACCEPTED = "accepted"
PROPERTY_NAMES = [
    "payload-format-indicator", "message-expiry-interval", "content-type", "response-topic",
    "correlation-data", "subscription-identifier", "session-expiry-interval",
    "assigned-client-identifier", "server-keep-alive", "authentication-method",
    "authentication-data", "request-problem-information", "will-delay-interval",
    "request-response-information", "response-information", "server-reference",
    "reason-string", "receive-maximum", "topic-alias-maximum", "topic-alias", "maximum-qos",
    "retain-available", "user-property", "maximum-packet-size",
    "wildcard-subscription-available", "subscription-identifier-available",
    "shared-subscription-available",
]  # fmt: skip
COMMAND_NAMES = [
    "connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe",
    "suback", "unsubscribe", "unsuback", "disconnect", "auth", "will", "Will", "PUBLISH",
    "pingreq",
]  # fmt: skip


CONTENT_TYPE_TWICE = ["-D", "publish", "content-type", "a", "-D", "publish", "content-type", "b"]
DISCONNECT_EXPIRY_TWICE = ["-D", "disconnect", "session-expiry-interval", "1"] * 2
WILL_CONTENT_TYPE_TWICE = ["-D", "will", "content-type", "a"] * 2


def base_args(tool: str) -> list[str]:
    return ["-p", "1", "-t", "a"] + (["-m", "x"] if tool == "pub" else [])


def mosquitto(tool: str, args: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of mosquitto_pub/sub, ``accepted`` for a good command line."""
    done = subprocess.run(
        [require(f"mosquitto_{tool}"), *args], capture_output=True, timeout=20, text=True
    )
    if done.stderr == "Error: Connection refused\n":
        return done.returncode, ACCEPTED
    return done.returncode, replace_tool_name(done.stderr)


def ours(tool: str, args: list[str]) -> tuple[int, str]:
    """The same for ``m2mhub pub/sub``'s command line parser and error printer."""
    module = pub if tool == "pub" else sub
    err = io.StringIO()
    try:
        module.parse(args)
    except UsageError as exc:
        with contextlib.redirect_stderr(err):
            status = report_usage_error(tool, exc)
        return status, err.getvalue()
    return 1, ACCEPTED  # mosquitto's status for the refused connection that follows


@pytest.mark.parametrize("tool", ["pub", "sub"])
def test_every_command_and_property_name_is_refused_or_accepted_as_by_mosquitto(
    tool: str,
) -> None:
    differences = []
    for command, name in itertools.product(COMMAND_NAMES, PROPERTY_NAMES):
        values = ["k", "v"] if name == "user-property" else ["1"]
        args = [*base_args(tool), "-D", command, name, *values]
        theirs, mine = mosquitto(tool, args), ours(tool, args)
        if theirs != mine:
            differences.append((command, name, theirs, mine))
    # The one deliberate difference (see _mqtt_properties): mosquitto accepts a Reason String
    # in will properties, then sends a CONNECT the specification (and its broker) refuses.
    assert [(c, n) for c, n, theirs, mine in differences] == [
        ("will", "reason-string"),
        ("Will", "reason-string"),
    ]
    for command, _, theirs, mine in differences:
        assert theirs == (1, ACCEPTED)
        refused = f"Error: reason-string property not allowed for {command} in --property argument."
        assert mine[1].startswith(refused)


@pytest.mark.parametrize(
    "extra",
    [
        ["-D", "publish", "payload-format-indicator", "-1"],
        ["-D", "publish", "payload-format-indicator", "256"],
        ["-D", "publish", "payload-format-indicator", "abc"],
        ["-D", "publish", "payload-format-indicator", "2"],
        ["-D", "publish", "message-expiry-interval", "4294967295"],
        ["-D", "publish", "message-expiry-interval", "4294967296"],
        ["-D", "publish", "message-expiry-interval", "99999999999"],
        ["-D", "publish", "message-expiry-interval", " 12x"],
        ["-D", "publish", "topic-alias", "0"],
        ["-D", "publish", "topic-alias", "65536"],
        ["-D", "connect", "receive-maximum", "0"],
        ["-D", "connect", "maximum-packet-size", "0"],
        ["-D", "connect", "request-problem-information", "2"],
        ["-D", "subscribe", "subscription-identifier", "268435455"],
        ["-D", "subscribe", "subscription-identifier", "268435456"],
        ["-D", "subscribe", "subscription-identifier", "4294967296"],
        ["-D", "publish", "content-type", "a\udcffb"],
        ["-D", "publish", "content-type", "a\tb"],
        ["-D", "publish", "user-property", "k\udcff", "v"],
        ["-D", "publish", "correlation-data", "x" * 65536],
        ["-D", "publish", "content-type", "x" * 65535],
        ["-D", "publish", "content-type", "x" * 65537],
        ["-D", "publish", "content-type", "a", "-D", "publish", "content-type", "b"],
        ["-D", "publish", "user-property", "k", "v", "-D", "publish", "user-property", "k", "v"],
        [*CONTENT_TYPE_TWICE, "-D", "connect", "receive-maximum", "0"],
        [*DISCONNECT_EXPIRY_TWICE, *WILL_CONTENT_TYPE_TWICE],
        [*WILL_CONTENT_TYPE_TWICE, "-D", "subscribe", "user-property", "a", "b"],
        ["-D", "connect", "session-expiry-interval", "5", "-x", "10"],
        ["-D", "connect", "session-expiry-interval", "5", "-c", "-i", "a"],
        ["-V", "311", "-x", "5", "-D", "connect", "session-expiry-interval", "5"],
        ["-D", "publish", "user-property", "a"],
        ["-D", "publish", "content-type"],
        ["-D", "publish"],
        ["-x", "-2"],
        ["-x", "-1"],
        ["-x", "∞"],
        ["-x", "0x10"],
        ["-x", "010"],
        ["-x", "09"],
        ["-x", "4294967295"],
        ["-x", "4294967296"],
        ["-x", "abc"],
        ["-x", "5 "],
        ["-x", " 5"],
    ],
)  # fmt: skip
@pytest.mark.parametrize("tool", ["pub", "sub"])
def test_property_values_and_session_expiry_match_mosquitto(tool: str, extra: list[str]) -> None:
    args = [*base_args(tool), *extra]
    assert ours(tool, args) == mosquitto(tool, args)


@pytest.mark.parametrize(
    ("args", "protocol"),
    [
        (["-D", "publish", "content-type", "a"], 5),
        (["-V", "311", "-D", "publish", "content-type", "a"], 5),
        (["-D", "publish", "content-type", "a", "-V", "311"], 4),
        (["-D", "publish", "content-type", "a", "-V", "mqttv31"], 3),
        (["-x", "5"], 4),
        (["-V", "mqttv5", "-x", "5"], 5),
    ],
)
def test_properties_switch_to_mqtt5_unless_a_later_v_says_otherwise(
    args: list[str], protocol: int
) -> None:
    """As seen in mosquitto's log (``p5``/``p2``/``p1``) for the same command lines."""
    assert pub.parse(["-t", "a", "-m", "x", *args]).protocol == protocol


@pytest.mark.parametrize(
    "fmt",
    [
        "%c", "100%", "%", "%-", "%0", "%5", "%-05", "%5.", "%5.3", "%.", "%0-5p", "%--5p",
        "%-0-5p", "%5.3.2p", "\\", "\\q", "\\x41", "\\\\\\", "@", "@@@", "@@", "%%%", "%%",
        "%j%J%I%U%A%C%D%E%F%P%R%S%l%m%p%q%r%t%x%X", "@Y@q@N", "%-010.3t", "é%t",
    ],
)  # fmt: skip
def test_output_formats_are_refused_or_accepted_as_by_mosquitto_sub(fmt: str) -> None:
    args = [*base_args("sub"), "-F", fmt]
    assert ours("sub", args) == mosquitto("sub", args)


LONG_AND_EDGE_OPTIONS = [
    "--session-expiry-interval", "--no-retain", "--count", "--timeout", "--protocol-version",
    "-V", "--verbose", "--filter-out", "--unsubscribe", "--keepalive", "--id", "--id-prefix",
    "--url", "--qos", "--topic", "--username", "--pw", "--host", "--port", "--debug",
    "--disable-clean-session", "--property", "-M", "--unix", "-x", "--will-topic",
    "--random-filter", "--pretty", "--retain-as-published", "--repeat",
]  # fmt: skip


@pytest.mark.parametrize("tool", ["pub", "sub"])
def test_long_options_and_missing_values_match_mosquitto(tool: str) -> None:
    """Each option given last, without its value: the same message (or acceptance)."""
    for option in LONG_AND_EDGE_OPTIONS:
        args = [*base_args(tool), option]
        assert (option, ours(tool, args)) == (option, mosquitto(tool, args))
