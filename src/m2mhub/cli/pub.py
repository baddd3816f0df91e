"""``m2mhub pub``: publish MQTT messages with mosquitto_pub's flags, messages and exit codes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

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
from m2mhub.client.mqtt import (
    BrokerDisconnected,
    ConnectionLostError,
    ConnectionRefusedByBroker,
    PublishFailed,
    PublishNotAllowed,
    PublishResult,
)
from m2mhub.mqtt.reason_codes import reason_string

USAGE = f"""\
m2mhub pub publishes a message on a single topic and exits (mosquitto_pub's flags).

Usage: m2mhub pub {{[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}}
                  {{-f file | -l | -n | -m message | -s}}
                  [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time]
                  [-x session-expiry] [-A bind_address] [-i id] [-I id_prefix]
                  [-d] [--quiet] [-M max_inflight] [-V protocol-version]
                  [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
       m2mhub pub --help

 -f : send the contents of a file as the message.
 -l : read messages from stdin, sending a separate message for each line.
 -m : message payload to send.
 -n : send a null (zero length) message.
 -r : message should be retained.
 -s : read message from stdin, sending the entire input as a message.
 -t : mqtt topic to publish to.
 --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.
 --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
{COMMON_HELP}
"""

TOPIC_ALIAS = 0x23
EXIT_INTERRUPTED = 130  # what a shell reports for mosquitto_pub killed by Ctrl-C
EXIT_NO_CONNECTION = 4  # MOSQ_ERR_NO_CONN
MODE_MESSAGE, MODE_FILE, MODE_LINES, MODE_STDIN, MODE_NULL = "m", "f", "l", "s", "n"


@dataclass
class PubOptions(MQTTOptions):
    """mosquitto_pub's options."""

    mode: str | None = None
    message: bytes = b""
    file: str | None = None
    retain: bool = False
    repeat: int = 1
    repeat_delay: float = 0.0
    extra: list[str] = field(default_factory=list)


def _set_mode(opts: PubOptions, mode: str) -> None:
    if opts.mode is not None:
        raise UsageError("Only one type of message can be sent at once.\n")
    opts.mode = mode


def parse(argv: list[str]) -> PubOptions:
    """Parse mosquitto_pub's command line; raises UsageError or HelpRequested."""
    opts = PubOptions()
    args = ArgReader(argv)
    for given in args:
        arg = SHORT_NAMES.get(given, given)
        if parse_common(opts, arg, args, multi_topic=False):
            continue
        if arg in ("-m", "--message"):
            _set_mode(opts, MODE_MESSAGE)
            opts.message = os.fsencode(args.value(arg, "message"))
        elif arg in ("-f", "--file"):
            _set_mode(opts, MODE_FILE)
            opts.file = args.value(arg, "file")
        elif arg in ("-l", "--stdin-line"):
            _set_mode(opts, MODE_LINES)
        elif arg in ("-s", "--stdin-file"):
            _set_mode(opts, MODE_STDIN)
        elif arg in ("-n", "--null-message"):
            _set_mode(opts, MODE_NULL)
        elif arg in ("-r", "--retain"):
            opts.retain = True
        elif arg == "--repeat":
            opts.repeat = int(_number(args.value(arg, "count")))
            if opts.repeat < 1:
                raise UsageError("--repeat argument must be >0.")
        elif arg == "--repeat-delay":
            opts.repeat_delay = _number(args.value(arg, "time"))
            if opts.repeat_delay < 0:
                raise UsageError("--repeat-delay argument must be >=0.0.")
        else:
            raise UsageError(f"Unknown option '{given}'.")
    if not opts.topics or opts.mode is None:
        raise UsageError("Both topic and message must be supplied.")
    check_common(opts, invalid_id="Invalid id.")
    return opts


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _load_payload(opts: PubOptions) -> bytes | None:
    """The single message of -m/-f/-s/-n (None for -l); prints mosquitto's error for -f."""
    if opts.mode == MODE_MESSAGE:
        return opts.message
    if opts.mode == MODE_NULL:
        return b""
    if opts.mode == MODE_STDIN:
        data = sys.stdin.buffer.read()
        if not data:
            print("Error: Zero length input.", file=sys.stderr)
            raise OSError("zero length input")
        return data
    if opts.mode == MODE_FILE:
        assert opts.file is not None
        try:
            with open(opts.file, "rb") as f:
                return f.read()
        except OSError:
            print(f'Error: Unable to open file "{opts.file}".', file=sys.stderr)
            raise
    return None


def _stdin_chunks(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[bytes]:
    """stdin, in chunks of whatever is available (b"" at the end), read by a daemon thread.

    Not the loop's executor: a thread blocked on a terminal would keep Ctrl-C from ending the
    program. The queue is bounded, so a fast pipe waits for the network.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
    # os.read on the descriptor, not sys.stdin.buffer: at exit the interpreter would wait
    # for the buffered reader's lock held by this thread.
    fd = sys.stdin.fileno()

    def reader() -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):
                return  # the loop is gone
            if not chunk:
                return

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    return queue


class _TopicNamer:
    """The topic for each PUBLISH: with ``-D publish topic-alias N`` (MQTT 5) mosquitto_pub names
    the topic in the first one only and sends the alias alone (an empty topic) after that."""

    def __init__(self, opts: PubOptions) -> None:
        self.topic = opts.topics[0]
        self.alias_only = False
        self.uses_alias = opts.protocol == 5 and TOPIC_ALIAS in opts.properties.get("publish")

    def next(self) -> str:
        if self.alias_only:
            return ""
        self.alias_only = self.uses_alias
        return self.topic


async def _publish_lines(session: Session, opts: PubOptions) -> None:
    """-l: one message per stdin line (newline stripped), pipelined like mosquitto_pub.

    Typed lines go out at once; piped files go out in large batches.
    """
    chunks = _stdin_chunks(asyncio.get_running_loop())
    publish = session.client.publish_nowait
    topics, qos, retain = _TopicNamer(opts), opts.qos, opts.retain
    props = opts.properties.get("publish") or None
    pending: list[asyncio.Future[PublishResult]] = []
    rest = b""
    while chunk := await chunks.get():
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            future = publish(topics.next(), line, qos, retain, props)
            if qos:
                pending.append(future)
        if len(pending) > 1000:
            for future in pending:
                if future.done():
                    future.result()  # raises if the connection was lost
            pending = [f for f in pending if not f.done()]
    if rest:
        pending.append(publish(topics.next(), rest, qos, retain, props))
    for future in pending:
        await future


class _PubSession(Session):
    """mosquitto_pub follows "Connection error" with a second line; mosquitto_sub does not."""

    def refused(self, exc: ConnectionRefusedByBroker) -> int:
        if exc.protocol_level == 5:
            self.err("Error: A network protocol error occurred when communicating with the broker.")
        else:
            self.err("Error: The connection was refused.")
        return exc.code


async def _main(opts: PubOptions, payload: bytes | None) -> int:
    session = _PubSession(opts, "pub")
    status = await session.connect()
    if status is not None:
        return status
    client = session.client
    topics = _TopicNamer(opts)
    disconnect_props = opts.properties.get("disconnect") or None
    try:
        if payload is None:
            await _publish_lines(session, opts)
        else:
            for n in range(opts.repeat):
                if n and opts.repeat_delay:
                    await asyncio.sleep(opts.repeat_delay)
                props = opts.properties.get("publish") or None
                try:
                    await client.publish(topics.next(), payload, opts.qos, opts.retain, props)
                except BrokerDisconnected:
                    if n + 1 == opts.repeat:
                        raise
                    # mosquitto_pub tries the next repeat on the closed connection.
                    session.err("Error: The client is not currently connected.")
                    return EXIT_NO_CONNECTION
        await client.disconnect(properties=disconnect_props)
    except PublishFailed as exc:
        session.err(f"Warning: Publish {exc.mid} failed: {reason_string(exc.reason_code)}.")
        await client.disconnect(properties=disconnect_props)
        return 0
    except PublishNotAllowed as exc:
        # mosquitto_pub: what libmosquitto refuses against the CONNACK is not sent at all.
        if exc.reason == "qos":
            session.err("Error: Message QoS not supported on broker, try a lower QoS.")
        await client.disconnect(properties=disconnect_props)
        return 0
    except BrokerDisconnected:
        return 0  # as mosquitto_pub: a broker's DISCONNECT ends it quietly (-d shows it)
    except ConnectionLostError:
        session.err("Error: The connection was lost.")
        return EXIT_CONNECTION_LOST
    return 0


async def _interruptible(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main``; Ctrl-C cancels it and the exit status is 130, as for mosquitto_pub.

    The loop's own signal handler, not asyncio.run's: a SIGINT that the kernel delivers to
    another thread (the stdin reader, an executor worker) still wakes an idle loop through
    the handler's wake-up descriptor, where a plain Python handler would wait for the next
    timer (the keepalive, a minute away).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    except (NotImplementedError, RuntimeError):  # no Unix signals: asyncio.run's handler
        return await task
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            return EXIT_INTERRUPTED
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub pub``; returns the exit status."""
    opts = parse_command("pub", USAGE, parse, argv)
    if isinstance(opts, int):
        return opts
    try:
        payload = _load_payload(opts)
    except OSError:
        if opts.mode == MODE_STDIN:
            print("Error loading input from stdin.", file=sys.stderr)
        else:
            print(f'Error loading input file "{opts.file}".', file=sys.stderr)
        return 1
    try:
        return asyncio.run(_interruptible(_main(opts, payload)))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
