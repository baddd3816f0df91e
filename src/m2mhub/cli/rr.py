"""``m2mhub rr``: send one request, print the response (mosquitto_rr's flags, output and codes).

It connects (MQTT 5 unless ``-V`` says otherwise), subscribes to the response topic (``-e``),
publishes the request on ``-t`` with the Response Topic property (MQTT 5), prints the first
message that arrives on the response topic as mosquitto_sub would (``-v``, ``-F``, ``-N``) and
exits 0; or 27 ("Timed out") when ``-W`` seconds pass first. Correlation Data is sent only if
given (``-D publish correlation-data VALUE``), as mosquitto_rr does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass

from m2mhub.cli._args import ArgReader, UsageError
from m2mhub.cli._mqtt_options import (
    COMMON_HELP,
    SHORT_NAMES,
    MQTTOptions,
    check_common,
    parse_command,
    parse_common,
)
from m2mhub.cli._mqtt_session import EXIT_CONNECTION_LOST, Session
from m2mhub.cli._sub_format import FormatError, OutputFormat, message_output
from m2mhub.client.mqtt import Message, MQTTClientError
from m2mhub.mqtt.reason_codes import reason_string

EXIT_TIMEOUT = 27  # MOSQ_ERR_TIMEOUT, what mosquitto_rr -W exits with
EXIT_REFUSED_SUBSCRIPTION = 1
RESPONSE_TOPIC = 0x08

USAGE = f"""\
m2mhub rr publishes a request message and waits for a response (mosquitto_rr's flags).
MQTT 5 by default: the request carries the Response Topic property.

Usage: m2mhub rr {{[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}}
                 -e response-topic {{-f file | -m message | -n | -s}}
                 [-c] [-k keepalive] [-q qos] [-R] [-x session-expiry-interval]
                 [-F format] [-W timeout_secs] [-A bind_address]
                 [-i id] [-I id_prefix] [-d] [-N] [--quiet] [-v] [-V protocol-version]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [-D command identifier value]
       m2mhub rr --help

 -e : response topic. The client subscribes to it and waits for one response there.
 -f : send the contents of a file as the request message.
 -F : output format (as m2mhub sub -F: %t topic, %p payload, %C %D %E %F %P %R %S properties...).
 -m : request message payload.
 -n : send a null (zero length) request message.
 -N : do not add an end of line character when printing the payload.
 --pretty : print formatted output rather than minimised output when using the
            JSON output format option.
 -R : do not print stale messages (those with retain set): wait for a fresh response.
 -s : read the request message from stdin, sending the entire input.
 -t : topic where the request message is sent.
 -v : print the response verbosely ("topic payload").
 -W : timeout in seconds to wait for the response; exit 27 when it passes.
{COMMON_HELP.replace("Defaults to mqttv311.", "Defaults to mqttv5.")}
"""

MODE_MESSAGE, MODE_FILE, MODE_STDIN, MODE_NULL = "m", "f", "s", "n"


@dataclass
class RrOptions(MQTTOptions):
    """mosquitto_rr's options."""

    protocol: int = 5
    response_topic: str | None = None
    mode: str | None = None
    message: bytes = b""
    file: str | None = None
    verbose: bool = False
    format: OutputFormat | None = None
    pretty: bool = False
    eol: bool = True
    no_retain: bool = False
    timeout: int = 0


def _set_mode(opts: RrOptions, mode: str) -> None:
    if opts.mode is not None:
        raise UsageError("Only one type of message can be sent at once.\n")
    opts.mode = mode


def _atoi(text: str) -> int:
    digits = ""
    for ch in text.strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def parse(argv: list[str]) -> RrOptions:
    """Parse mosquitto_rr's command line; raises UsageError or HelpRequested."""
    opts = RrOptions()
    args = ArgReader(argv)
    for given in args:
        arg = SHORT_NAMES.get(given, given)
        if parse_common(opts, arg, args, multi_topic=False):
            continue
        if arg == "-e":
            topic = args.value(arg, "response topic")
            if "+" in topic or "#" in topic:
                raise UsageError(f"Invalid response topic '{topic}', does it contain '+' or '#'?")
            opts.response_topic = topic
        elif arg == "-m":
            _set_mode(opts, MODE_MESSAGE)
            opts.message = os.fsencode(args.value(arg, "message"))
        elif arg == "-f":
            _set_mode(opts, MODE_FILE)
            opts.file = args.value(arg, "file")
        elif arg in ("-s", "--stdin-file"):
            _set_mode(opts, MODE_STDIN)
        elif arg in ("-n", "--null-message"):
            _set_mode(opts, MODE_NULL)
        elif arg == "-F":
            try:
                opts.format = OutputFormat(args.value(arg, "format"))
            except FormatError as exc:
                raise UsageError(str(exc)) from None
        elif arg == "-N":
            opts.eol = False
        elif arg == "-R":
            opts.no_retain = True
        elif arg in ("-v", "--verbose"):
            opts.verbose = True
        elif arg == "-W":
            opts.timeout = _atoi(args.value(arg, "timeout"))
            if opts.timeout < 1:
                raise UsageError(f'Invalid timeout "{opts.timeout}".\n')
        elif arg == "--pretty":
            opts.pretty = True
        else:
            raise UsageError(f"Unknown option '{arg}'.")
    if opts.format is not None:
        opts.format.pretty = opts.pretty
    if not opts.topics or opts.mode is None or opts.response_topic is None:
        raise UsageError("All of topic, message, and response topic must be supplied.")
    check_common(opts)
    if RESPONSE_TOPIC in opts.properties.get("publish"):
        # -e is the Response Topic; mosquitto_rr refuses a second one (whatever the version).
        raise UsageError(
            "Error in PUBLISH properties: Duplicate response topic.", False, prefix=False
        )
    return opts


def load_request(opts: RrOptions) -> bytes:
    """The request payload of -m/-n/-f/-s; raises OSError (after saying so) for -f."""
    if opts.mode == MODE_MESSAGE:
        return opts.message
    if opts.mode == MODE_STDIN:
        return sys.stdin.buffer.read()
    if opts.mode == MODE_FILE:
        assert opts.file is not None
        try:
            with open(opts.file, "rb") as f:
                return f.read()
        except OSError:
            print(f'Error: Unable to open file "{opts.file}".', file=sys.stderr)
            raise
    return b""


class Requester:
    """One request/response round: connect, subscribe, publish, print the first response."""

    def __init__(self, opts: RrOptions, request: bytes) -> None:
        self.opts = opts
        self.request = request
        self.session = Session(opts, "rr", on_message=self.on_message)
        self.session.client.on_subscribe = self.on_subscribe
        self.done = False
        self.status = 0
        self.out = sys.stdout.buffer

    def stop(self, status: int = 0) -> None:
        if self.done:
            return
        self.done = True
        self.status = status
        self.session.client.disconnect_nowait(
            properties=self.opts.properties.get("disconnect") or None
        )

    def on_subscribe(self, mid: int, granted: list[int]) -> None:
        if self.done:
            return
        if granted[0] >= 0x80:
            self.session.err(reason_string(granted[0]))
            self.stop(EXIT_REFUSED_SUBSCRIPTION)
            return
        opts = self.opts
        props = opts.properties.get("publish")
        if opts.protocol == 5:
            props[RESPONSE_TOPIC] = opts.response_topic
        future = self.session.client.publish_nowait(
            opts.topics[0], self.request, opts.qos, False, props or None
        )
        # Like mosquitto_rr, a refused request is not reported: no response will come.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def on_message(self, message: Message) -> None:
        if self.done or (self.opts.no_retain and message.retain):
            return
        opts = self.opts
        text, errors = message_output(message, opts.format, opts.verbose, opts.eol)
        for error in errors:
            self.session.err(error)
        if text:
            self.out.write(text)
            self.out.flush()
        self.stop()

    def on_timeout(self) -> None:
        if self.done:
            return
        self.session.err("Timed out")
        if not self.session.client.connected:
            # Still waiting for the CONNACK: mosquitto_rr says DISCONNECT all the same, and
            # the connection ends by our hand, so it is not reported as lost.
            self.session.debug("sending DISCONNECT")
            self.session.retry_when_lost = True
        self.stop(EXIT_TIMEOUT)

    def on_signal(self, signum: int) -> None:
        # mosquitto_rr dies of the signal; this ends politely, with the status a shell reports.
        self.stop(128 + signum)

    async def main(self) -> int:
        opts = self.opts
        loop = asyncio.get_running_loop()
        if opts.timeout:
            loop.call_later(opts.timeout, self.on_timeout)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.on_signal, signum)
        client = self.session.client
        status = await self.session.connect()
        if status is not None:
            if self.session.failure == "refused":
                self.session.debug("sending DISCONNECT")
            return self.status if self.done else status
        if self.done:  # -W or a signal while connecting
            await client.disconnect()
            return self.status
        with contextlib.suppress(MQTTClientError):  # lost at once: reported below
            client.subscribe_nowait(
                [(opts.response_topic or "", opts.qos)],
                opts.properties.get("subscribe") or None,
            )
        await client.wait_closed()
        if not self.done:
            self.session.err("Error: The connection was lost.")
            return EXIT_CONNECTION_LOST
        return self.status


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub rr``; returns the exit status."""
    opts = parse_command("rr", USAGE, parse, argv)
    if isinstance(opts, int):
        return opts
    try:
        request = load_request(opts)
    except OSError:
        return 1
    try:
        return asyncio.run(Requester(opts, request).main())
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
