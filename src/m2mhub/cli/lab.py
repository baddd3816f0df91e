"""``m2mhub lab``: the protocol lab's experiments, run and checked against the specification.

    m2mhub lab qos  [--host H] [--port P] [--report FILE.html] [-q]
    m2mhub lab coap [--host H] [--port P] [--report FILE.html] [-q]

Without ``--host``/``--port`` an embedded hub runs in-process on free loopback ports.
Exit status 0 when every experiment arrived as the specification says, 1 otherwise, 2 for
usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from m2mhub.lab.results import Outcome, table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m2mhub lab",
        description="Run the protocol lab's experiments and compare with the specification.",
    )
    parser.add_argument("experiment", choices=("qos", "coap"), help="which set to run")
    parser.add_argument("--host", help="server to run against (default: an embedded hub)")
    parser.add_argument("--port", type=int, help="its port (default 1883 for qos, 5683 for coap)")
    parser.add_argument("--report", type=Path, help="write an HTML report with sequence diagrams")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "-k", dest="select", help="run only experiments whose name contains this text"
    )
    return parser


async def _run_qos(args: argparse.Namespace) -> list[Outcome]:
    from m2mhub.lab.embedded import embedded_hub
    from m2mhub.lab.mqtt_lab import run_qos

    stream = None if args.quiet else sys.stderr
    if args.host is None and args.port is None:
        async with embedded_hub() as (port, _):
            return await run_qos("127.0.0.1", port, stream, args.select)
    host, port = args.host or "localhost", args.port or 1883
    # fail once, as mosquitto_sub does, rather than once per experiment
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    return await run_qos(host, port, stream, args.select)


async def _run_coap(args: argparse.Namespace) -> list[Outcome]:
    from m2mhub.lab.coap_lab import coap_experiments, run_coap
    from m2mhub.lab.embedded import embedded_hub

    experiments = [e for e in coap_experiments() if not args.select or args.select in e.name]
    stream = None if args.quiet else sys.stderr
    if args.host is None and args.port is None:
        async with embedded_hub(coap=True) as (_, coap_port):
            assert coap_port is not None
            return await run_coap(experiments, "127.0.0.1", coap_port, stream)
    return await run_coap(experiments, args.host or "127.0.0.1", args.port or 5683, stream)


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub lab``."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    runner = _run_qos if args.experiment == "qos" else _run_coap
    try:
        outcomes = asyncio.run(runner(args))
    except OSError as exc:
        code = exc.errno
        text = os.strerror(code) if code is not None and code > 0 else (exc.strerror or str(exc))
        print(f"Error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(table(outcomes))
    if args.report is not None:
        from m2mhub.lab.report import write_report

        write_report(args.report, f"m2mhub lab {args.experiment}", outcomes, _target(args))
        print(f"report: {args.report}", file=sys.stderr)
    return 0 if outcomes and all(o.matches for o in outcomes) else 1


def _target(args: argparse.Namespace) -> str:
    if args.host is None and args.port is None:
        return "embedded m2mhub (in-process, loopback)"
    default = 1883 if args.experiment == "qos" else 5683
    return f"{args.host or 'localhost'}:{args.port or default}"
