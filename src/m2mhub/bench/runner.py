"""Running a group of scenarios against several servers and writing the results.

Each (scenario, server) pair gets a freshly started server: a backlog left by an overloaded run
would otherwise be delivered into the next one. The servers of one scenario run back to back so
that they see the same conditions on the machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from m2mhub.bench.mqbench import ensure_mqbench, find_source, mqbench_version
from m2mhub.bench.report import Result, parse_mqbench_output, render_table, replace_block
from m2mhub.bench.scenarios import ISSUE_REFERENCE, TITLES, Scenario
from m2mhub.bench.servers import ServerError, ServerKind, start_server


@dataclass(slots=True)
class RunOptions:
    """What ``m2mhub bench`` was asked to do."""

    group: str
    servers: list[ServerKind]
    scenarios: list[Scenario]
    duration: float = 10.0
    server_core: int | None = 0
    client_core: int | None = 1
    readme: Path | None = None
    json_out: Path | None = None
    command: str = ""
    log: bool = True
    repeat: int = 1  # runs per (scenario, server); the table shows the best
    extra_notes: list[str] = field(default_factory=list)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def coap_put(port: int, path: str, payload: bytes, timeout: float = 2.0) -> int | None:
    """Send one CON PUT and return the response code byte (None if nothing came back)."""
    message = bytearray(b"\x40\x03\x4d\x42")  # CON, PUT, message id 0x4d42, no token
    previous = 0
    for segment in path.strip("/").split("/"):
        raw = segment.encode()
        delta = 11 - previous  # Uri-Path
        previous = 11
        if len(raw) < 13:
            message.append((delta << 4) | len(raw))
        else:
            message += bytes(((delta << 4) | 13, len(raw) - 13))
        message += raw
    message += b"\xff" + payload
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(bytes(message), ("127.0.0.1", port))
            reply, _ = s.recvfrom(2048)
        except OSError:
            return None
    return reply[1] if len(reply) >= 4 else None


def _pinned(argv: list[str], core: int | None) -> list[str]:
    return argv if core is None else ["taskset", "-c", str(core), *argv]


def run_one(
    options: RunOptions, mqbench: Path, scenario: Scenario, kind: ServerKind, repo: Path
) -> Result:
    result = Result(scenario.key, kind.name)
    if scenario.group == "mqtt5" and kind.no_mqtt5:
        result.error = kind.no_mqtt5
        return result
    try:
        server = start_server(
            kind, repo, list(scenario.config), options.server_core, label=scenario.key
        )
    except ServerError as exc:
        result.error = str(exc)
        return result
    try:
        path = kind.resource_path(scenario.path) if scenario.path else ""
        if scenario.seed_put:
            code = coap_put(server.port, path, b"0123456789abcdef")
            if code is None or code >> 5 != 2:
                result.error = f"seed PUT {path} answered {code!r}"
                return result
        argv = _pinned(
            [str(mqbench), *scenario.mqbench_args(server.port, options.duration, server.pid, path)],
            options.client_core,
        )
        result.command = shlex.join(argv)
        limit = (options.duration if scenario.timed else 60.0) + 120.0
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            result.error = f"mqbench did not finish within {limit:.0f}s"
            return result
        result.exit_code = done.returncode
        if options.server_core is not None:
            result.expected_affinity = str(options.server_core)
            result.affinity = server.thread_affinities()
        try:
            result.data = parse_mqbench_output(done.stdout)
        except ValueError:
            result.error = f"mqbench exit {done.returncode}: {done.stderr.strip()[-300:]}"
        if not server.alive():
            why = server.failure_line()
            died = f"{kind.name} died during the run" + (f" ({why})" if why else "")
            result.error = died if result.error is None else f"{died}; {result.error}"
    finally:
        server.stop()
    return result


def best_of(scenario: Scenario, tries: list[Result]) -> Result:
    """The run with the best first metric (highest rate, lowest memory); failures count last."""
    metric = scenario.metrics[0]

    def score(result: Result) -> float:
        value = None if result.error else metric.value(result.data)
        if value is None:
            return float("-inf")
        return value if metric.higher_is_better else -value

    return max(tries, key=score)


def run(options: RunOptions, repo: Path) -> list[Result]:
    """Run every scenario against every server, then write the README block and JSON."""
    mqbench = ensure_mqbench(repo, log=options.log)
    started = dt.datetime.now(dt.UTC)
    load_before = load_average()
    results: list[Result] = []
    every: list[Result] = []
    for scenario in options.scenarios:
        # Attempts alternate between the servers so that a burst of other load on the machine
        # does not land on one server's attempts only.
        tries: dict[str, list[Result]] = {kind.name: [] for kind in options.servers}
        for attempt in range(max(1, options.repeat)):
            for kind in options.servers:
                if options.log:
                    tag = f" #{attempt + 1}" if options.repeat > 1 else ""
                    print(f"[{scenario.key}] {kind.name}{tag} ...", end=" ", flush=True)
                result = run_one(options, mqbench, scenario, kind, repo)
                tries[kind.name].append(result)
                if options.log:
                    summary = result.error or ", ".join(
                        f"{m.label.split(',')[0]}={m.value(result.data)}" for m in scenario.metrics
                    )
                    print(summary.splitlines()[0], flush=True)
                time.sleep(0.5)  # let sockets of the last run close
        for kind in options.servers:
            every.extend(tries[kind.name])
            results.append(best_of(scenario, tries[kind.name]))
    load = f"{load_before} before, {load_average()} after"
    block = render_block(options, repo, results, started, load)
    if options.log:
        print()
        print(block)
    if options.readme is not None:
        text = options.readme.read_text() if options.readme.exists() else "# Benchmarks\n"
        options.readme.write_text(replace_block(text, options.group, block))
    if options.json_out is not None:
        options.json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "group": options.group,
            "started": started.isoformat(timespec="seconds"),
            "command": options.command,
            "repeat": options.repeat,
            "best": [r.to_json() for r in results],
            "all_runs": [r.to_json() for r in every] if options.repeat > 1 else [],
        }
        options.json_out.write_text(json.dumps(payload, indent=1) + "\n")
    return results


def render_block(
    options: RunOptions,
    repo: Path,
    results: list[Result],
    started: dt.datetime,
    load: str,
) -> str:
    """The Markdown the README gets between this group's markers."""
    try:
        mqbench_v = mqbench_version(find_source(repo))
    except Exception:  # the binary may come from $MQBENCH without a source tree
        mqbench_v = "unknown"
    versions = ", ".join(f"{k.name} {k.version(repo)}" for k in options.servers)
    configs = sorted({line for s in options.scenarios for line in s.config})
    pinning = (
        f"servers on core {options.server_core}, mqbench on core {options.client_core}"
        if options.server_core is not None
        else "no pinning"
    )
    title = TITLES[options.group]
    lines = [
        f"### {title}",
        "",
        f"- Run: {started:%Y-%m-%d %H:%M} UTC; load average (1/5/15 min): {load}",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}; " + pinning,
        f"- Versions: {versions}, mqbench {mqbench_v}",
        f"- Command: `{options.command}`",
    ]
    if options.group in ("mqtt", "mqtt5"):
        protocol = (
            "MQTT 5.0 (PUBLISH without properties)" if options.group == "mqtt5" else "MQTT 3.1.1"
        )
        lifted = (
            "; the QoS 1 fan-in row gives every broker `" + "`, `".join(configs) + "`"
            if configs
            else ""
        )
        lines.append(
            f"- Runs of {options.duration:g} s, 64-byte payloads, {protocol}, each broker restarted"
            " for every row" + lifted
        )
    else:
        lines.append(
            f"- Request runs of {options.duration:g} s, 4 sockets x 32 requests in flight;"
            " each server restarted for every row"
        )
    if options.repeat > 1:
        lines.append(f"- Each cell is the best of {options.repeat} runs (all runs are in the JSON)")
    lines += [f"- {note}" for note in options.extra_notes]
    scenario_list = list(options.scenarios)
    names = [k.name for k in options.servers]
    issue_label = ISSUE_REFERENCE.get(options.group)
    lines += ["", render_table(scenario_list, names, results, issue_label), ""]
    return "\n".join(lines)
