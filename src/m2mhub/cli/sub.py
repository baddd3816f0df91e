"""``m2mhub sub``: subscribe and print messages with mosquitto_sub's flags, output and exit codes.

Like mosquitto_sub it subscribes again after every (re)connect and reconnects after a lost
connection (once a second), until ``-C``, ``-E``, ``-W`` or Ctrl-C ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import sys
from dataclasses import dataclass, field

from m2mhub.cli._args import ArgReader, UsageError
from m2mhub.cli._mqtt_options import (
    COMMON_HELP,
    SHORT_NAMES,
    MQTTOptions,
    check_common,
    parse_command,
    parse_common,
    valid_filter,
)
from m2mhub.cli._mqtt_session import Session, print_line
from m2mhub.cli._sub_format import FormatError, OutputFormat, message_output
from m2mhub.client.mqtt import BrokerDisconnected, Message, MQTTClientError
from m2mhub.mqtt.packets import MQTT_5, SubscriptionOptions
from m2mhub.mqtt.topics import topic_matches

EXIT_TIMEOUT = 27  # MOSQ_ERR_TIMEOUT, what mosquitto_sub -W exits with
EXIT_TIMEOUT_OFFLINE = 255  # what mosquitto_sub exits with when -W elapses while reconnecting
RECONNECT_DELAY = 1.0

USAGE = f"""\
m2mhub sub subscribes to a set of topics and prints the messages it receives
(mosquitto_sub's flags).

Usage: m2mhub sub {{[-h host] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}}
                  [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                  [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained]
                  [--retain-as-published] [--pretty] [--random-filter chance]
                  [-T filter_out] [-U topic ...] [-F format] [-W timeout_secs]
                  [-A bind_address] [-i id] [-I id_prefix]
                  [-d] [-N] [--quiet] [-v] [-V protocol-version]
                  [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
       m2mhub sub --help

 -C : disconnect and exit after receiving the 'msg_count' messages.
 -E : exit once all subscriptions have been acknowledged by the broker.
 -F : output format (%t topic, %p payload, %q qos, %r retain, %l length, %m mid,
      %x/%X hex payload, %I ISO time, %U Unix time, %j/%J JSON; MQTT 5 properties
      %A alias, %C content type, %D correlation data, %E expiry, %F payload format,
      %P user properties, %R response topic, %S subscription id; @ strftime fields,
      \\n \\t... escapes; widths as %-10t, %05l, %.3t). See docs/sub.md.
 -N : do not add an end of line character when printing the payload.
 -R : do not print stale messages (those with retain set).
 -t : mqtt topic to subscribe to. May be repeated multiple times.
 -T : topic string to filter out of results. May be repeated.
 -U : unsubscribe from a topic. May be repeated.
 -v : print published messages verbosely ("topic payload").
 -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
 --pretty : print formatted output rather than minimised output when using the
            JSON output format option.
 --random-filter : only print a percentage of received messages (100: all, 50.0: half).
 --retain-as-published : (MQTT 5) ask the broker to keep the retain flag of live messages.
 --retained-only : only handle messages with the retained flag set, and exit when the
                   first non-retained message is received.
 --remove-retained : send a message to the server to clear any received retained messages.
{COMMON_HELP}
"""


@dataclass
class SubOptions(MQTTOptions):
    """mosquitto_sub's options."""

    verbose: bool = False
    msg_count: int = 0
    timeout: int = 0
    no_retain: bool = False
    retain_as_published: bool = False
    retained_only: bool = False
    remove_retained: bool = False
    eol: bool = True
    exit_after_sub: bool = False
    format: OutputFormat | None = None
    pretty: bool = False
    random_filter: float = 100.0  # percent of messages printed
    filter_outs: list[str] = field(default_factory=list)
    unsub_topics: list[str] = field(default_factory=list)


def _positive(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f'Invalid {what} "{text}".')
    return value


def _chance(text: str) -> float:
    """``--random-filter``: mosquitto keeps tenths of a percent, from 0.1 up to 1000.0."""
    found = re.match(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text)
    tenths = int(10.0 * float(found.group(0))) if found else 0  # C atof, then an int
    if tenths > 10000 or tenths < 1:
        raise UsageError("--random-filter chance must be between 0.1-100.0\n")
    return tenths / 10.0


def parse(argv: list[str]) -> SubOptions:
    """Parse mosquitto_sub's command line; raises UsageError or HelpRequested."""
    opts = SubOptions()
    args = ArgReader(argv)
    for given in args:
        arg = SHORT_NAMES.get(given, given)
        if parse_common(opts, arg, args, multi_topic=True):
            continue
        if arg == "-C":
            opts.msg_count = _positive(args.value(arg, "count"), "message count")
        elif arg == "-W":
            opts.timeout = _positive(args.value(arg, "timeout"), "timeout")
        elif arg in ("-E",):
            opts.exit_after_sub = True
        elif arg in ("-F",):
            try:
                opts.format = OutputFormat(args.value(arg, "format"))
            except FormatError as exc:
                raise UsageError(str(exc)) from None
        elif arg in ("-N",):
            opts.eol = False
        elif arg == "-R":
            opts.no_retain = True
        elif arg == "--retained-only":
            opts.retained_only = True
        elif arg == "--remove-retained":
            opts.remove_retained = True
        elif arg in ("-T", "--filter-out"):
            topic_filter = args.value(arg, "topic filter")
            if not valid_filter(topic_filter):
                raise UsageError(
                    f"Invalid filter topic '{topic_filter}', are all '+' and '#' wildcards correct?"
                )
            opts.filter_outs.append(topic_filter)
        elif arg in ("-U", "--unsubscribe"):
            topic = args.value(arg, "unsubscribe topic")
            if not valid_filter(topic):
                raise UsageError(
                    f"Invalid unsubscribe topic '{topic}', are all '+' and '#' wildcards correct?"
                )
            opts.unsub_topics.append(topic)
        elif arg in ("-v", "--verbose"):
            opts.verbose = True
        elif arg == "--retain-as-published":
            opts.retain_as_published = True
        elif arg == "--pretty":
            opts.pretty = True
        elif arg == "--random-filter":
            opts.random_filter = _chance(args.value(arg, "chance"))
        else:
            raise UsageError(f"Unknown option '{given}'.")
    if opts.no_retain and opts.retained_only:
        raise UsageError("Combining '-R' and '--retained-only' makes no sense.", False)
    if opts.format is not None:
        opts.format.pretty = opts.pretty
    if not opts.topics:
        raise UsageError("You must specify a topic to subscribe to.")
    check_common(opts)
    return opts


class Subscriber:
    """The message handling of mosquitto_sub's ``my_message_callback``."""

    def __init__(self, opts: SubOptions) -> None:
        self.opts = opts
        self.session = Session(opts, "sub", on_message=self.on_message)
        self.session.client.on_subscribe = self.on_subscribe
        self.session.retry_when_lost = True
        self.received = 0
        self.done = False
        self.timed_out = False
        self.timed_out_offline = False
        self.out = sys.stdout.buffer

    def stop(self) -> None:
        self.done = True
        self.session.client.disconnect_nowait(
            properties=self.opts.properties.get("disconnect") or None
        )

    def on_subscribe(self, mid: int, granted: list[int]) -> None:
        if self.opts.debug and not self.opts.quiet:
            print_line(f"Subscribed (mid: {mid}): " + ", ".join(str(g) for g in granted))
        if all(g >= 0x80 for g in granted):
            self.session.err("All subscription requests were denied.")
            self.stop()
        elif self.opts.exit_after_sub:
            self.stop()

    def on_message(self, message: Message) -> None:
        if self.done:
            return
        opts = self.opts
        if opts.remove_retained and message.retain:
            self.session.client.publish_nowait(message.topic, b"", 1, True)
        if opts.retained_only and not message.retain:
            self.stop()
            return
        if opts.no_retain and message.retain:
            return
        for topic_filter in opts.filter_outs:
            if topic_matches(topic_filter, message.topic):
                return
        if opts.random_filter < 100.0 and random.random() * 100.0 >= opts.random_filter:
            return
        self.print_message(message)
        if opts.msg_count:
            self.received += 1
            if self.received >= opts.msg_count:
                self.stop()

    def print_message(self, message: Message) -> None:
        opts = self.opts
        text, errors = message_output(message, opts.format, opts.verbose, opts.eol)
        for error in errors:  # mosquitto prints them while its line is still buffered
            self.session.err(error)
        if text:
            self.out.write(text)
            self.out.flush()

    def on_timeout(self) -> None:
        if not self.done:
            self.timed_out = True
            # mosquitto_sub quirk: -W elapsing while not connected exits 255, silently.
            self.timed_out_offline = not self.session.client.connected
            self.stop()

    async def main(self) -> int:
        opts = self.opts
        loop = asyncio.get_running_loop()
        if opts.timeout:
            loop.call_later(opts.timeout, self.on_timeout)
        # Ctrl-C and kill end it politely, with DISCONNECT (so no will), as mosquitto_sub.
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop)
        client = self.session.client
        first = True
        while not self.done:
            status = await self.session.connect()
            if status is not None:
                if self.session.failure == "refused":
                    self.session.debug("sending DISCONNECT")
                    return status
                if first and self.session.failure != "lost":
                    return status
                await asyncio.sleep(RECONNECT_DELAY)  # broker not back yet: keep trying
                continue
            first = False
            if self.done:  # stopped (signal, -W) while connecting
                await client.disconnect()
                break
            try:
                props = opts.properties
                # As mosquitto_sub: the option goes on the wire in MQTT 5 only.
                options = SubscriptionOptions(
                    qos=opts.qos,
                    retain_as_published=opts.retain_as_published and opts.protocol == MQTT_5,
                )
                client.subscribe_nowait(
                    [(t, options) for t in opts.topics], props.get("subscribe") or None
                )
                for topic in opts.unsub_topics:
                    client.unsubscribe_nowait([topic], props.get("unsubscribe") or None)
            except MQTTClientError:
                pass  # lost at once: reconnect below
            await client.wait_closed()
            if isinstance(client.error, BrokerDisconnected):
                break  # as mosquitto_sub: a broker's DISCONNECT ends it, exit status 0
            if not self.done:
                await asyncio.sleep(RECONNECT_DELAY)
        if self.timed_out_offline:
            return EXIT_TIMEOUT_OFFLINE
        if self.timed_out:
            self.session.err("Timed out")
            return EXIT_TIMEOUT
        return 0


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub sub``; returns the exit status."""
    opts = parse_command("sub", USAGE, parse, argv)
    if isinstance(opts, int):
        return opts
    try:
        return asyncio.run(Subscriber(opts).main())
    except KeyboardInterrupt:
        return 0
