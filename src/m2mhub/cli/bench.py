"""``m2mhub bench``: run the load scenarios against our hub and reference servers side by side.

m2mhub bench mqtt --brokers m2mhub,mosquitto --duration 10
m2mhub bench mqtt5 --brokers mosquitto,m2mhub --duration 10
m2mhub bench coap --servers m2mhub,libcoap,aiocoap
m2mhub bench mqtt --scenarios fanin-q0,conns --duration 3 --no-readme
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from m2mhub.bench.mqbench import MqbenchError
from m2mhub.bench.paths import repo_root
from m2mhub.bench.runner import RunOptions
from m2mhub.bench.runner import run as run_bench
from m2mhub.bench.scenarios import SCENARIOS, select
from m2mhub.bench.servers import COAP_SERVERS, MQTT_SERVERS, ServerKind

DEFAULT_SERVERS = {
    "mqtt": "mosquitto,m2mhub",
    "mqtt5": "mosquitto,m2mhub",
    "coap": "libcoap,aiocoap,m2mhub",
}


def build_parser(prog: str = "m2mhub bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Measure our hub against reference servers with mqbench (pinned to cores) "
        "and write the table into benchmarks/README.md.",
    )
    parser.add_argument(
        "group",
        choices=sorted(SCENARIOS),
        help="mqtt (issue 2), mqtt5 (the same loads with MQTT 5.0 clients) or coap (issue 4)",
    )
    parser.add_argument(
        "--brokers",
        "--servers",
        dest="servers",
        help="comma-separated servers, the reference first (mqtt: mosquitto, m2mhub, aedes, "
        "amqtt; coap: libcoap, aiocoap, m2mhub); default: "
        + "; ".join(f"{g}: {s}" for g, s in DEFAULT_SERVERS.items()),
    )
    parser.add_argument(
        "--scenarios",
        help="comma-separated scenario keys (default: all of the group): "
        + "; ".join(f"{g}: {','.join(s.key for s in v)}" for g, v in SCENARIOS.items()),
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per timed run (default 10)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per scenario and server; the table shows the best (default 1)",
    )
    parser.add_argument("--server-core", type=int, default=0, help="core for servers (default 0)")
    parser.add_argument("--client-core", type=int, default=1, help="core for mqbench (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin anything with taskset")
    parser.add_argument(
        "--readme",
        type=Path,
        help="Markdown file to update between the group's markers "
        "(default benchmarks/README.md of the checkout)",
    )
    parser.add_argument("--no-readme", action="store_true", help="only print the table")
    parser.add_argument(
        "--json",
        type=Path,
        dest="json_out",
        help="write every raw mqbench result here (default, unless --no-readme: "
        "benchmarks/results/GROUP.json of the checkout)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    return parser


def _servers(group: str, names: str) -> list[ServerKind]:
    table = COAP_SERVERS if group == "coap" else MQTT_SERVERS
    kinds: list[ServerKind] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in table:
            raise ValueError(f"unknown {group} server {name!r}; known: {', '.join(table)}")
        kinds.append(table[name]())
    if not kinds:
        raise ValueError("no servers given")
    return kinds


def run(argv: list[str], prog: str = "m2mhub bench") -> int:
    """Entry point of ``m2mhub bench``; returns the exit code."""
    args = build_parser(prog).parse_args(argv)
    repo = repo_root()
    try:
        servers = _servers(args.group, args.servers or DEFAULT_SERVERS[args.group])
        keys = [k.strip() for k in args.scenarios.split(",")] if args.scenarios else None
        scenarios = select(args.group, keys)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    readme = None if args.no_readme else (args.readme or repo / "benchmarks" / "README.md")
    json_out = args.json_out
    if json_out is None and readme is not None:
        json_out = repo / "benchmarks" / "results" / f"{args.group}.json"
    options = RunOptions(
        group=args.group,
        servers=servers,
        scenarios=scenarios,
        duration=args.duration,
        server_core=None if args.no_pin else args.server_core,
        client_core=None if args.no_pin else args.client_core,
        readme=readme,
        json_out=json_out,
        command=" ".join([prog, *(shlex.quote(a) for a in argv)]),
        log=not args.quiet,
        repeat=max(1, args.repeat),
    )
    try:
        results = run_bench(options, repo)
    except MqbenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    if readme is not None and not args.quiet:
        print(f"updated {readme}")
    return 0 if all(r.error is None for r in results) else 2
