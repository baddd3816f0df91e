"""``m2mhub coap``: a CoAP client with libcoap coap-client's flags.

    m2mhub coap -m get coap://[::1]/time
    m2mhub coap -m put -e ON coap://127.0.0.1/alarm
    m2mhub coap -s 30 -m get coap://127.0.0.1/alarm        # observe for 30 s

Payloads go to stdout, each followed by a newline (coap-client needs ``-w`` for that; ``-o FILE``
writes the exact bytes).  Error responses print ``4.04 Not Found`` on stderr like coap-client,
but unlike coap-client every failure also sets a non-zero exit status (see EXIT_* below).
"""

from __future__ import annotations

import asyncio
import getopt
import signal
import sys
from dataclasses import dataclass, field
from typing import BinaryIO, Final
from urllib.parse import unquote_to_bytes

from m2mhub.cli._trace_output import TRACE_FLAGS, TraceOutput, trace_style
from m2mhub.client.coap import (
    METHODS,
    CoapClient,
    CoapClientError,
    NetworkError,
    RequestTimeout,
    ResetReceived,
    Trace,
)
from m2mhub.client.coap_show import show
from m2mhub.client.coap_uri import CoapUri, CoapUriError, parse_uri
from m2mhub.coap import options as o
from m2mhub.coap.message import Message, OptionValue
from m2mhub.trace.format import CLIENT_TO_SERVER, SERVER_TO_CLIENT, Style

EXIT_OK: Final = 0
EXIT_ERROR_RESPONSE: Final = 1  # 4.xx or 5.xx
EXIT_USAGE: Final = 2
EXIT_TIMEOUT: Final = 3
EXIT_RESET: Final = 4
EXIT_NETWORK: Final = 5

PROG: Final = "m2mhub coap"

USAGE: Final = f"""\
Usage: {PROG} [-a addr] [-b [num,]size] [-e text] [-f file] [-m method] [-o file]
\t\t[-p port] [-s duration] [-t type] [-v num] [-w] [-A type] [-B seconds]
\t\t[-G count] [-N] [-O num,text] [-T token] [-U] URI
\tURI is coap://host[:port]/path?query (host may be [IPv6])

\t-a addr\t\tThe local interface address to use
\t-b [num,]size\tBlock size to be used in GET/PUT/POST requests
\t       \t\t(value must be a multiple of 16 not larger than 1024)
\t       \t\tIf num is present, the request chain will start at block num
\t-e text\t\tInclude text as payload (use percent-encoding for
\t       \t\tnon-ASCII characters)
\t-f file\t\tFile to send with PUT/POST (use '-' for STDIN)
\t-m method\tRequest method (get|put|post|delete|fetch|patch|ipatch),
\t       \t\tdefault is 'get'
\t-o file\t\tOutput received data to this file (use '-' for STDOUT),
\t       \t\texactly as received (no newline added)
\t-p port\t\tListen on specified port
\t-s duration\tSubscribe to / Observe resource for given duration in seconds
\t-t type\t\tContent format for given resource for PUT/POST
\t-v num \t\tVerbosity level (default 3); 6 and above print every message
\t       \t\tsent and received, decoded
\t-w     \t\tAppend a newline to received data (always done on stdout)
\t-A type\t\tAccepted media type
\t-B seconds\tBreak operation after waiting given seconds (default is 90)
\t-G count\tRepeat the request count times (1..255), a second apart
\t-N     \t\tSend NON-confirmable message
\t-O num,text\tAdd option num with contents text to request. If the
\t       \t\ttext begins with 0x, then the hex text is converted to binary data
\t-T token\tDefine the token of the request
\t-U     \t\tNever include Uri-Host or Uri-Port options
\t--trace\t\tPrint every message sent and received on stderr, one line
\t       \t\teach, as m2mhub trace does (--detail: with fields and hex
\t       \t\tdump; --json: one JSON object per message)
\t--help \t\tThis help

Exit status: 0 success, 1 error response (4.xx/5.xx), 2 bad usage, 3 timeout,
4 RST received, 5 network error (e.g. connection refused).
Examples:
\t{PROG} -m get coap://[::1]/
\t{PROG} -m get coap://[::1]/.well-known/core
\t{PROG} -m put -e ON coap://127.0.0.1/alarm
\t{PROG} -s 30 -m get coap://127.0.0.1/alarm
"""

# coap-client's media type names (cmdline_content_type) plus the numbers themselves.
MEDIA_TYPES: Final[dict[str, int]] = {
    "plain": 0,
    "text": 0,
    "text/plain": 0,
    "link": 40,
    "link-format": 40,
    "application/link-format": 40,
    "xml": 41,
    "application/xml": 41,
    "binary": 42,
    "octet-stream": 42,
    "application/octet-stream": 42,
    "exi": 47,
    "application/exi": 47,
    "json": 50,
    "application/json": 50,
    "cbor": 60,
    "application/cbor": 60,
    "senml+json": 110,
    "application/senml+json": 110,
    "senml+cbor": 112,
    "application/senml+cbor": 112,
}


class UsageError(Exception):
    """Bad command line: printed with a hint and exit status 2."""


@dataclass
class Options:
    """The parsed command line."""

    uri: CoapUri
    method: str = "GET"
    payload: bytes = b""
    confirmable: bool = True
    observe_seconds: float | None = None
    block_size: int | None = None
    block_start: int = 0
    wait: float = 90.0
    content_format: int | None = None
    accept: int | None = None
    extra: list[tuple[int, OptionValue]] = field(default_factory=list)
    token: bytes | None = None
    verbosity: int = 3
    output: str | None = None
    local_host: str | None = None
    local_port: int = 0
    no_uri_host: bool = False
    repeat: int = 1
    trace: Style | None = None


def media_type(text: str) -> int:
    if text.isdigit():
        value = int(text)
        if value > 0xFFFF:
            raise UsageError(f"content format {value} out of range")
        return value
    found = MEDIA_TYPES.get(text.lower())
    if found is None:
        raise UsageError(f"unknown media type {text!r} (use a number or one of: json, cbor, ...)")
    return found


def parse_option(text: str) -> tuple[int, OptionValue]:
    """``-O num,text``: text as the option's format wants, ``0x..`` as raw bytes."""
    num_text, comma, value = text.partition(",")
    if not comma or not num_text.isdigit() or int(num_text) > 0xFFFF:
        raise UsageError(f"-O wants num,text, got {text!r}")
    number = int(num_text)
    if value.lower().startswith("0x"):
        try:
            return number, bytes.fromhex(value[2:])
        except ValueError:
            raise UsageError(f"bad hex in -O {text!r}") from None
    d = o.OPTIONS.get(number)
    if d is not None and d.format == o.UINT:
        if not value.isdigit():
            raise UsageError(f"option {d.name} wants a number, got {value!r}")
        return number, int(value)
    if d is not None and d.format == o.STRING:
        return number, value
    return number, value.encode("utf-8")


def parse_args(argv: list[str]) -> Options:
    try:
        opts, rest = getopt.gnu_getopt(
            argv, "a:b:e:f:m:o:p:s:t:v:wA:B:G:NO:T:U", ["help", "trace", "detail", "json"]
        )
    except getopt.GetoptError as e:
        raise UsageError(str(e)) from None
    if any(flag == "--help" for flag, _ in opts):
        raise _HelpRequested
    if len(rest) != 1:
        raise UsageError("exactly one URI expected" if rest else "no URI given")
    try:
        uri = parse_uri(rest[0])
    except CoapUriError as e:
        raise UsageError(str(e)) from None
    result = Options(uri)
    payload_set = False
    for flag, value in opts:
        if flag == "-m":
            method = value.upper()
            if method not in METHODS:
                raise UsageError(f"unknown method {value!r}")
            result.method = method
        elif flag == "-e":
            result.payload = unquote_to_bytes(value)
            payload_set = True
        elif flag == "-f":
            if payload_set:
                raise UsageError("-e and -f cannot both be given")
            try:
                if value == "-":
                    result.payload = sys.stdin.buffer.read()
                else:
                    with open(value, "rb") as f:
                        result.payload = f.read()
            except OSError as e:
                raise UsageError(f"cannot read {value}: {e.strerror}") from None
        elif flag == "-N":
            result.confirmable = False
        elif flag == "-s":
            result.observe_seconds = _number(flag, value)
        elif flag == "-b":
            num_text, comma, size_text = value.rpartition(",")
            size = int(_number(flag, size_text))
            if size < 16 or size > 1024 or size & (size - 1):
                raise UsageError("-b size must be a power of two between 16 and 1024")
            result.block_size = size
            if comma:
                result.block_start = int(_number(flag, num_text))
        elif flag == "-B":
            result.wait = _number(flag, value)
        elif flag == "-t":
            result.content_format = media_type(value)
        elif flag == "-A":
            result.accept = media_type(value)
        elif flag == "-O":
            result.extra.append(parse_option(value))
        elif flag == "-T":
            token = value.encode("utf-8")
            if len(token) > 8:
                raise UsageError("a token has at most 8 bytes")
            result.token = token
        elif flag == "-v":
            result.verbosity = int(_number(flag, value))
        elif flag == "-o":
            result.output = value
        elif flag == "-a":
            result.local_host = value
        elif flag == "-p":
            result.local_port = int(_number(flag, value))
        elif flag == "-G":
            if not value.isdigit() or not 1 <= int(value) <= 255:
                raise UsageError("-G count must be between 1 and 255")
            result.repeat = int(value)
        elif flag == "-U":
            result.no_uri_host = True
        elif flag == "-w":
            pass  # stdout always gets a newline after each payload
        elif flag in TRACE_FLAGS:
            result.trace = trace_style(result.trace, flag)
    return result


class _HelpRequested(Exception):
    pass


def _number(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag} wants a number, got {text!r}") from None
    if value < 0:
        raise UsageError(f"{flag} wants a number >= 0, got {text!r}")
    return value


class Printer:
    """Writes payloads (stdout with a newline each, or the raw bytes to ``-o`` file)."""

    def __init__(self, output: str | None) -> None:
        self.raw = output is not None and output != "-"
        self.out: BinaryIO = sys.stdout.buffer
        if output is not None and self.raw:
            self.out = open(output, "wb")  # noqa: SIM115
        self.newline = output is None

    def payload(self, data: bytes) -> None:
        if not data:
            return
        self.out.write(data)
        if self.newline and not data.endswith(b"\n"):
            self.out.write(b"\n")
        self.out.flush()

    def close(self) -> None:
        if self.raw:
            self.out.close()


def make_trace(verbosity: int, style: Style | None = None, peer: str = "") -> Trace | None:
    """``-v 6``: coap-client's lines on stdout; ``--trace``: the shared formatter on stderr."""
    verbose = verbosity >= 6
    output = TraceOutput(style) if style is not None else None
    if not verbose and output is None:
        return None

    def trace(direction: str, msg: Message) -> None:
        if verbose:
            sys.stdout.write(show(msg) + "\n")
            sys.stdout.flush()
        if output is not None:
            arrow = CLIENT_TO_SERVER if direction == "send" else SERVER_TO_CLIENT
            output.coap(msg, arrow, peer)

    return trace


def report_error(msg: Message) -> None:
    """coap-client's ``4.04 Not Found`` line on stderr, plus any diagnostic payload."""
    line = o.code_name(msg.code)
    if msg.payload:
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in msg.payload)
        if not line.endswith(text):
            line += f" {text}"
    print(line, file=sys.stderr, flush=True)


def _outcome(msg: Message, printer: Printer) -> int:
    if msg.code >= 128:
        report_error(msg)
        return EXIT_ERROR_RESPONSE
    printer.payload(msg.payload)
    return EXIT_OK


async def _run(opts: Options) -> int:
    host = opts.uri.host
    peer = f"[{host}]:{opts.uri.port}" if ":" in host else f"{host}:{opts.uri.port}"
    trace = make_trace(opts.verbosity, opts.trace, peer)
    printer = Printer(opts.output)
    client = CoapClient(
        trace=trace,
        local_host=opts.local_host,
        local_port=opts.local_port,
        send_uri_host=not opts.no_uri_host,
    )
    try:
        if opts.observe_seconds is not None:
            return await _observe(client, opts, printer)
        status = EXIT_OK
        for n in range(opts.repeat):
            if n:
                await asyncio.sleep(1.0)  # coap-client's -G: one second between requests
            response = await client.request(
                opts.method,
                opts.uri,
                opts.payload,
                confirmable=opts.confirmable,
                options=opts.extra,
                content_format=opts.content_format,
                accept=opts.accept,
                token=opts.token if n == 0 else None,
                block_size=opts.block_size,
                block_start=opts.block_start,
                timeout=opts.wait,
            )
            status = max(status, _outcome(response, printer))
        return status
    finally:
        printer.close()
        await client.close()


async def _observe(client: CoapClient, opts: Options, printer: Printer) -> int:
    assert opts.observe_seconds is not None
    observation = client.observe(
        opts.uri,
        confirmable=opts.confirmable,
        options=opts.extra,
        accept=opts.accept,
        token=opts.token,
        block_size=opts.block_size,
        timeout=opts.wait,
    )
    status = EXIT_OK

    async def consume() -> None:
        nonlocal status
        try:
            async for msg in observation:
                status = _outcome(msg, printer)
        except TimeoutError:
            raise RequestTimeout(f"no response within {opts.wait:g} s") from None

    # Ctrl-C or SIGTERM ends the observation like the end of -s: deregister, then exit.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    stopper = asyncio.ensure_future(stop.wait())
    consumer: asyncio.Future[None] | None = None
    try:
        starter = asyncio.ensure_future(observation.start())
        await asyncio.wait({starter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not starter.done():
            starter.cancel()
            return status
        starter.result()  # raises if the registration failed
        consumer = asyncio.ensure_future(consume())
        await asyncio.wait(
            {consumer, stopper},
            timeout=opts.observe_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        stopper.cancel()
        if consumer is not None:
            consumer.cancel()
        for sig in handled:
            loop.remove_signal_handler(sig)
        await observation.cancel(wait=1.0)
    if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
        raise consumer.exception()  # type: ignore[misc]
    return status


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub coap``."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends us quietly, as coap-client
    try:
        opts = parse_args(argv)
    except _HelpRequested:
        print(USAGE)
        return EXIT_OK
    except UsageError as e:
        print(f"{PROG}: {e}\n(see '{PROG} --help')", file=sys.stderr)
        return EXIT_USAGE
    where = str(opts.uri)
    try:
        return asyncio.run(_run(opts))
    except RequestTimeout as e:
        print(f"{PROG}: timeout: no response from {where}: {e}", file=sys.stderr)
        return EXIT_TIMEOUT
    except TimeoutError:
        print(
            f"{PROG}: timeout: no response from {where} within {opts.wait:g} s",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    except ResetReceived as e:
        print(f"{PROG}: {e} (the server rejected the message)", file=sys.stderr)
        return EXIT_RESET
    except NetworkError as e:
        print(f"{PROG}: network error: {e}", file=sys.stderr)
        return EXIT_NETWORK
    except CoapClientError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return EXIT_NETWORK
    except OSError as e:
        print(f"{PROG}: {where}: {e.strerror or e}", file=sys.stderr)
        return EXIT_NETWORK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
