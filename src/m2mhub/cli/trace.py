"""``m2mhub trace``: a transparent MQTT (TCP) and CoAP (UDP) proxy that prints every packet.

m2mhub trace --mqtt 1884:localhost:1883 --coap 5684:localhost:5683 [-V | --json] [-w f.pcap]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import BinaryIO

from m2mhub.trace.format import PacketFormatter, Style
from m2mhub.trace.pcap import PcapWriter
from m2mhub.trace.proxy import CoapProxy, MqttProxy, TraceSink, parse_spec


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="m2mhub trace",
        add_help=False,
        description="Relay MQTT and CoAP traffic unchanged and print every packet, decoded.",
    )
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument(
        "--mqtt",
        action="append",
        default=[],
        metavar="LISTEN_PORT:HOST:PORT",
        help="relay TCP connections on LISTEN_PORT to the MQTT broker at HOST:PORT (repeatable)",
    )
    p.add_argument(
        "--coap",
        action="append",
        default=[],
        metavar="LISTEN_PORT:HOST:PORT",
        help="relay UDP datagrams on LISTEN_PORT to the CoAP server at HOST:PORT (repeatable)",
    )
    p.add_argument(
        "-V",
        "--detail",
        action="store_true",
        help="every field, property and option, and a hex dump",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per packet")
    p.add_argument("-w", metavar="FILE.pcap", help="also write the traffic to a pcap file")
    p.add_argument(
        "--bind", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (127.0.0.1)"
    )
    return p


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve(
    args: argparse.Namespace,
    mqtt: list[tuple[int, str, int]],
    coap: list[tuple[int, str, int]],
    pcap_file: BinaryIO | None,
) -> int:
    style: Style = "json" if args.json else ("detail" if args.detail else "line")
    pcap = PcapWriter(pcap_file) if pcap_file is not None else None
    sink = TraceSink(PacketFormatter(style), sys.stdout, pcap)
    proxies: list[MqttProxy | CoapProxy] = []
    ready: list[str] = []
    try:
        for listen, host, port in mqtt:
            mp = MqttProxy(sink, args.bind, listen, host, port)
            proxies.append(mp)
            bound = await mp.start()
            ready.append(f"tracing MQTT: {_hostport(args.bind, bound)} -> {_hostport(host, port)}")
        for listen, host, port in coap:
            cp = CoapProxy(sink, args.bind, listen, host, port)
            proxies.append(cp)
            bound = await cp.start()
            ready.append(f"tracing CoAP: {_hostport(args.bind, bound)} -> {_hostport(host, port)}")
    except OSError as exc:
        print(f"m2mhub trace: {exc}", file=sys.stderr)
        for proxy in proxies:
            proxy.close()
        return 1
    # Only once every listener is bound, so that whoever waits for these lines can start.
    print("\n".join(ready), file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for proxy in proxies:
        proxy.close()
    if pcap is not None:
        pcap.flush()
    return 0


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub trace``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.mqtt and not args.coap:
        parser.print_usage(sys.stderr)
        print(
            "m2mhub trace: give at least one --mqtt or --coap LISTEN_PORT:HOST:PORT",
            file=sys.stderr,
        )
        return 2
    if args.json and args.detail:
        print("m2mhub trace: --json and --detail exclude each other", file=sys.stderr)
        return 2
    try:
        mqtt = [parse_spec(s) for s in args.mqtt]
        coap = [parse_spec(s) for s in args.coap]
    except ValueError as exc:
        print(f"m2mhub trace: {exc}", file=sys.stderr)
        return 2
    pcap_file: BinaryIO | None = None
    if args.w:
        try:
            pcap_file = open(args.w, "wb")  # noqa: SIM115 - closed below, after the loop
        except OSError as exc:
            print(f"m2mhub trace: {exc}", file=sys.stderr)
            return 1
    try:
        return asyncio.run(_serve(args, mqtt, coap, pcap_file))
    except KeyboardInterrupt:
        return 0
    finally:
        if pcap_file is not None:
            pcap_file.close()
