"""The options ``m2mhub pub`` and ``m2mhub sub`` share, parsed the way mosquitto_pub/sub do.

mosquitto's clients use ``-h`` for the host, so help is ``--help``; a bad option prints
``Error: ...`` and ``Use 'm2mhub pub --help' to see usage.`` and exits with status 1. Options
this implementation does not have yet (TLS, ``--proxy``, ``-D auth``) are named
as such instead of being ignored.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from m2mhub.cli._args import ArgReader, HelpRequested, UsageError
from m2mhub.cli._mqtt_properties import PropertyArgs
from m2mhub.cli._trace_output import TRACE_FLAGS, TRACE_HELP, trace_style
from m2mhub.client.mqtt import random_client_id
from m2mhub.mqtt.packets import Will
from m2mhub.trace.format import Style


@dataclass
class MQTTOptions:
    """Connection options shared by pub and sub (mosquitto's ``client_shared.c``)."""

    host: str = "localhost"
    port: int = 1883
    bind_address: str | None = None
    unix_path: str | None = None
    client_id: str | None = None
    id_prefix: str | None = None
    clean_session: bool = True
    keepalive: int = 60
    qos: int = 0
    protocol: int = 4
    username: str | None = None
    password: str | None = None
    debug: bool = False
    trace: Style | None = None
    quiet: bool = False
    max_inflight: int = 20
    session_expiry: int | None = None
    will_topic: str | None = None
    will_payload: bytes | None = None
    will_qos: int = 0
    will_retain: bool = False
    topics: list[str] = field(default_factory=list)
    properties: PropertyArgs = field(default_factory=PropertyArgs)

    def effective_client_id(self, program: str) -> str:
        """``-i``, or ``-I`` + process id, or empty (the broker assigns one) -- as mosquitto."""
        if self.client_id is not None:
            return self.client_id
        if self.id_prefix is not None:
            return f"{self.id_prefix}{os.getpid()}"
        if self.protocol == 3:
            return random_client_id()
        return ""

    def will(self) -> Will | None:
        if self.will_topic is None:
            return None
        return Will(
            self.will_topic,
            self.will_payload or b"",
            self.will_qos,
            self.will_retain,
            self.properties.get("will"),
        )

    def connect_properties(self) -> dict[int, object]:
        """MQTT 5 CONNECT properties (Session Expiry from ``-x``/``-c`` among them)."""
        if self.protocol != 5:
            return {}
        return self.properties.get("connect")


OptionsT = TypeVar("OptionsT", bound=MQTTOptions)


def _int(text: str) -> int:
    """C ``atoi``: leading digits, 0 when none (mosquitto is that forgiving)."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    digits = ""
    for ch in text.lstrip("+-"):
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def _qos(text: str, what: str = "QoS") -> int:
    q = _int(text)
    if q < 0 or q > 2:
        raise UsageError(f"Invalid {what} given: {q}")
    return q


def _session_expiry(text: str) -> int:
    """``-x``: C ``strtol(text, &end, 0)`` of the whole text, -1 or ``∞`` for never."""
    if text == "∞":
        return 0xFFFFFFFF
    match = re.fullmatch(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if match is None:
        raise UsageError("session-expiry-interval not a number.\n")
    digits = match.group(2)
    base = 16 if digits[:2] in ("0x", "0X") else 8 if digits.startswith("0") else 10
    value = int(digits, base)
    if match.group(1) == "-":
        value = -value
    if value < -1 or value > 0xFFFFFFFF:
        raise UsageError("session-expiry-interval out of range.\n")
    return 0xFFFFFFFF if value == -1 else value


def _protocol(text: str) -> int:
    versions = {"mqttv31": 3, "31": 3, "mqttv311": 4, "311": 4, "mqttv5": 5, "5": 5}
    if text not in versions:
        raise UsageError("Invalid protocol version argument given.\n")
    return versions[text]


def _has_wildcard(topic: str) -> bool:
    return "+" in topic or "#" in topic


def valid_filter(topic_filter: str) -> bool:
    """mosquitto_sub_topic_check: ``+``/``#`` must fill whole levels, ``#`` only last."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for n, level in enumerate(levels):
        if level == "#" and n != len(levels) - 1:
            return False
        if level not in ("+", "#") and _has_wildcard(level):
            return False
    return "\0" not in topic_filter


UNSUPPORTED = {
    "--cafile": "TLS",
    "--capath": "TLS",
    "--cert": "TLS",
    "--key": "TLS",
    "--keyform": "TLS",
    "--ciphers": "TLS",
    "--tls-version": "TLS",
    "--tls-alpn": "TLS",
    "--tls-engine": "TLS",
    "--tls-engine-kpass-sha1": "TLS",
    "--tls-use-os-certs": None,
    "--insecure": None,
    "--psk": "TLS-PSK",
    "--psk-identity": "TLS-PSK",
    "--proxy": "SOCKS proxies",
}


# Long options mosquitto's messages name by their short form ("-t argument given but...").
SHORT_NAMES = {
    "--host": "-h",
    "--port": "-p",
    "--id": "-i",
    "--id-prefix": "-I",
    "--keepalive": "-k",
    "--url": "-L",
    "--qos": "-q",
    "--topic": "-t",
    "--username": "-u",
    "--pw": "-P",
    "--filter-out": "-T",
    "--unsubscribe": "-U",
    "--message": "-m",
    "--file": "-f",
}


def parse_common(opts: MQTTOptions, arg: str, args: ArgReader, multi_topic: bool) -> bool:
    """Handle one shared option (``arg`` as :data:`SHORT_NAMES` gives it); False if ``arg``
    is not one of them."""
    if arg in ("-h", "--host"):
        opts.host = args.value(arg, "host")
    elif arg in ("-p", "--port"):
        port = _int(args.value(arg, "port"))
        if port < 0 or port > 65535:
            raise UsageError(f"Invalid port given: {port}")
        opts.port = port
    elif arg == "--unix":
        opts.unix_path = args.value(arg, "socket path")
    elif arg == "-A":
        opts.bind_address = args.value(arg, "address")
    elif arg in ("-c", "--disable-clean-session"):
        opts.clean_session = False
    elif arg in ("-d", "--debug"):
        opts.debug = True
    elif arg in TRACE_FLAGS:
        opts.trace = trace_style(opts.trace, arg)
    elif arg in ("-i", "--id"):
        if opts.id_prefix is not None:
            raise UsageError("-i and -I argument cannot be used together.\n")
        opts.client_id = args.value(arg, "id")
    elif arg in ("-I", "--id-prefix"):
        if opts.client_id is not None:
            raise UsageError("-i and -I argument cannot be used together.\n")
        opts.id_prefix = args.value(arg, "id prefix")
    elif arg in ("-k", "--keepalive"):
        keepalive = _int(args.value(arg, "keepalive"))
        if keepalive < 5 or keepalive > 65535:
            raise UsageError("Invalid keepalive given, it must be between 5 and 65535 inclusive.\n")
        opts.keepalive = keepalive
    elif arg in ("-L", "--url"):
        _parse_url(opts, args.value(arg, "URL"))
    elif arg == "-M":
        if args.i >= len(args.argv):
            raise UsageError("-M argument given but max_inflight not specified.\n")
        opts.max_inflight = _int(args.value(arg, "max_inflight"))
        if opts.max_inflight < 1:
            raise UsageError("Maximum inflight messages must be greater than 0.")
    elif arg in ("-q", "--qos"):
        opts.qos = _qos(args.value(arg, "QoS"))
    elif arg == "--quiet":
        opts.quiet = True
    elif arg in ("-t", "--topic"):
        topic = args.value(arg, "topic")
        if multi_topic:
            if not valid_filter(topic):
                raise UsageError(
                    f"Invalid subscription topic '{topic}', are all '+' and '#' wildcards correct?"
                )
            opts.topics.append(topic)
        else:
            if _has_wildcard(topic):
                raise UsageError(f"Invalid publish topic '{topic}', does it contain '+' or '#'?")
            opts.topics = [topic]
    elif arg in ("-u", "--username"):
        opts.username = args.value(arg, "username")
    elif arg in ("-P", "--pw"):
        opts.password = args.value(arg, "password")
    elif arg in ("-V", "--protocol-version"):
        opts.protocol = _protocol(args.value("--protocol-version", "version"))
    elif arg == "-x":
        opts.session_expiry = _session_expiry(args.value("-x", "session expiry interval"))
    elif arg == "--will-topic":
        topic = args.value(arg, "will topic")
        if _has_wildcard(topic):
            raise UsageError(f"Invalid will topic '{topic}', does it contain '+' or '#'?")
        opts.will_topic = topic
    elif arg == "--will-payload":
        opts.will_payload = os.fsencode(args.value(arg, "will payload"))
    elif arg == "--will-qos":
        opts.will_qos = _qos(args.value(arg, "will QoS"), "will QoS")
    elif arg == "--will-retain":
        opts.will_retain = True
    elif arg == "--nodelay":
        pass  # asyncio already sets TCP_NODELAY
    elif arg in ("-D", "--property"):
        opts.properties.parse(args)
        opts.protocol = 5  # as mosquitto's clients: properties mean MQTT 5
    elif arg in UNSUPPORTED:
        what = UNSUPPORTED[arg] or "TLS"
        raise UsageError(f"{arg}: {what} is not supported yet.", False)
    elif arg == "--help":
        raise HelpRequested
    else:
        return False
    return True


def _parse_url(opts: MQTTOptions, url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise UsageError("Unsupported URL scheme.")
    if parts.scheme == "mqtts":
        raise UsageError("mqtts:// (TLS) is not supported yet.", False)
    if parts.hostname:
        opts.host = parts.hostname
    opts.port = parts.port or 1883
    if parts.username is not None:
        opts.username = urllib.parse.unquote(parts.username)
    if parts.password is not None:
        opts.password = urllib.parse.unquote(parts.password)
    topic = parts.path[1:]
    if not topic:
        raise UsageError("Invalid URL for -L argument specified - topic missing.")
    opts.topics.append(topic)


def check_common(opts: MQTTOptions, invalid_id: str = "Invalid id and/or clean_session.") -> None:
    """Cross-option rules checked after parsing, in mosquitto's words.

    ``invalid_id``: what the program says when libmosquitto refuses a persistent session
    without a client id (mosquitto_pub says it differently from mosquitto_sub and _rr).
    """
    if opts.will_payload is not None and opts.will_topic is None:
        raise UsageError("Will payload given, but no will topic given.")
    if opts.will_retain and opts.will_topic is None:
        raise UsageError("Will retain given, but no will topic given.")
    # mosquitto checks -c against -i (an -I prefix does not count: the id is made later).
    if opts.protocol == 5:
        expiry = opts.session_expiry
        if expiry is None:
            expiry = 0 if opts.clean_session else 0xFFFFFFFF
        if expiry == 0xFFFFFFFF and (opts.client_id is None or opts.id_prefix is not None):
            raise UsageError(
                "You must provide a client id if you are using an infinite session expiry interval."
            )
        if not opts.clean_session and opts.client_id is None and opts.id_prefix is None:
            raise UsageError(invalid_id, False)
    elif not opts.clean_session and (opts.client_id is None or opts.id_prefix is not None):
        raise UsageError("You must provide a client id if you are using the -c option.")
    if opts.password is not None and opts.username is None and opts.protocol != 5:
        raise UsageError("Problem setting username and/or password.", False)
    # mosquitto: -x, or -c without -x (a session that never expires), is a CONNECT property,
    # so -D connect session-expiry-interval next to either is a duplicate.
    expiry = opts.session_expiry
    if expiry is None and not opts.clean_session:
        expiry = 0xFFFFFFFF
    if expiry:
        opts.properties.add_session_expiry(expiry)
    opts.properties.check()


def parse_command(
    program: str, usage: str, parse: Callable[[list[str]], OptionsT], argv: list[str]
) -> OptionsT | int:
    """``parse(argv)``, or the exit status when there is nothing to run: 0 after printing
    ``usage`` for ``--help``, 1 after mosquitto's error lines for a bad command line."""
    try:
        return parse(argv)
    except HelpRequested:
        print(usage, end="")
        return 0
    except UsageError as exc:
        return report_usage_error(program, exc)


def report_usage_error(program: str, exc: UsageError) -> int:
    """Print mosquitto's ``Error: ...`` / usage hint; returns exit status 1."""
    text = str(exc)
    if exc.prefix:
        print(f"Error: {text}", file=sys.stderr)
    elif text:
        print(text, file=sys.stderr)
    if exc.show_usage_hint:
        print(f"\nUse 'm2mhub {program} --help' to see usage.", file=sys.stderr)
    return 1


def connect_error_text(exc: OSError) -> str:
    """mosquitto's message for a broker it cannot reach."""
    if isinstance(exc, socket.gaierror):
        return "Unable to connect (Lookup error.)."
    if exc.errno is not None:
        return f"Error: {os.strerror(exc.errno)}"
    # asyncio tried several addresses (e.g. ::1 and 127.0.0.1): report the first errno.
    found = re.search(r"\[Errno (\d+)\]", str(exc))
    if found:
        return f"Error: {os.strerror(int(found.group(1)))}"
    return f"Error: {exc}"


def printer(quiet: bool) -> Callable[[str], None]:
    """A function that prints an error line to stderr unless ``--quiet``."""

    def err(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    return err


COMMON_HELP = f"""\
 -A : bind the outgoing socket to this host/ip address.
 --unix : connect to a broker through a unix domain socket instead of a TCP socket.
 -c : disable clean session/enable persistent client mode (needs -i or -I).
 -d : enable debug messages (every packet sent and received).
 -D : define MQTT v5 properties: -D command name value, e.g. -D publish user-property k v
      (commands: connect, publish, subscribe, unsubscribe, disconnect, will). Implies -V 5.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to an id assigned by the broker.
 -I : define the client id as id_prefix appended with the process id.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt://[username[:password]@]host[:port]/topic
 -M : the maximum inflight messages for QoS 1/2.
 -p : network port to connect to. Defaults to 1883.
 -P : provide a password
 -q : quality of service level to use. Defaults to 0.
 -u : provide a username
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.
 -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5 only).
 --help : display this message.
 --nodelay : accepted for compatibility (TCP_NODELAY is always set).
 --quiet : don't print error messages.
{TRACE_HELP}
 --will-payload : payload for the client Will.
 --will-qos : QoS level for the client Will.
 --will-retain : if given, make the client Will retained.
 --will-topic : the topic on which to publish the client Will.
TLS and --proxy are not supported yet."""
