"""Benchmark results: parsing mqbench's JSON, the Markdown table, and the README block.

The table has one row per metric, one column per server, the ratio of our hub to the reference
server (the first column), and notes that qualify the numbers (a saturated load generator makes
a number a lower bound; lost or duplicated messages, connection errors).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from m2mhub.bench.scenarios import Metric, Scenario

SUBJECT = "m2mhub"


@dataclass(slots=True)
class Result:
    """One scenario run against one server: mqbench's JSON, or why there is none."""

    scenario: str
    server: str
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    command: str = ""
    # Cores the server's threads may run on, read at the end of the run; [] if not read.
    affinity: list[str] = field(default_factory=list)
    expected_affinity: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "server": self.server,
            "exit_code": self.exit_code,
            "error": self.error,
            "command": self.command,
            "server_thread_affinity": self.affinity,
            "data": self.data,
        }


def parse_mqbench_output(stdout: str) -> dict[str, Any]:
    """The one JSON object mqbench prints (the last line that parses as an object)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
    raise ValueError(f"no JSON object in mqbench output: {stdout[-300:]!r}")


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "kB" or unit == "ms":
        return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"
    return f"{value:,.0f}"


def format_ratio(subject: float | None, reference: float | None) -> str:
    if subject is None or reference is None or reference == 0:
        return "n/a"
    ratio = subject / reference
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}"


def result_notes(result: Result) -> list[str]:
    """Short remarks that qualify one server's number."""
    if result.error:
        return [f"{result.server}: {result.error.splitlines()[0]}"]
    d = result.data
    notes: list[str] = []
    who = result.server
    server = d.get("server")
    if d.get("mode") in ("mqtt", "coap") and isinstance(server, dict):
        cpu = server.get("cpu_pct")
        if isinstance(cpu, int | float):
            # A server far below 100% was waiting (latency-bound, or starved by other load).
            notes.append(f"{who} CPU {cpu:.0f}%")
    if d.get("client_saturated"):
        notes.append(f"{who}: mqbench saturated ({d.get('client_cpu_pct')}% CPU), a lower bound")
    expected = d.get("expected")
    lost = d.get("lost")
    if isinstance(lost, int) and lost > 0:
        share = f" ({100 * lost / expected:.1f}%)" if isinstance(expected, int) and expected else ""
        notes.append(f"{who}: lost {lost:,}{share}")
    dups = d.get("duplicates")
    if isinstance(dups, int) and dups > 0:
        notes.append(f"{who}: {dups:,} duplicates")
    unacked = d.get("unacked")
    if isinstance(unacked, int) and unacked > 0:
        notes.append(f"{who}: {unacked:,} unacked")
    for key in ("timeouts", "update_timeouts"):
        value = d.get(key)
        if isinstance(value, int) and value > 0:
            notes.append(f"{who}: {value:,} {key.replace('_', ' ')}")
    if d.get("mode") == "coap-observe":
        got_last, registered = d.get("observers_got_last"), d.get("registered")
        if got_last != registered:
            notes.append(f"{who}: {got_last}/{registered} observers saw the last update")
    if d.get("mode") == "conns" and d.get("connected") != d.get("count"):
        notes.append(f"{who}: {d.get('connected')}/{d.get('count')} connected")
    errors = d.get("errors")
    if isinstance(errors, dict) and errors:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(errors.items())[:4])
        notes.append(f"{who}: errors {shown}")
    if result.expected_affinity is not None and result.affinity not in (
        [],
        [result.expected_affinity],
    ):
        notes.append(f"{who}: threads not confined to core {result.expected_affinity}")
    if result.exit_code not in (0, None):
        notes.append(f"{who}: mqbench exit {result.exit_code}")
    return notes


def _find(results: list[Result], scenario: str, server: str) -> Result | None:
    for r in results:
        if r.scenario == scenario and r.server == server:
            return r
    return None


def metric_value(result: Result | None, metric: Metric) -> float | None:
    if result is None or result.error:
        return None
    return metric.value(result.data)


def render_table(
    scenarios: list[Scenario],
    servers: list[str],
    results: list[Result],
    issue_label: str | None = None,
) -> str:
    """The Markdown table: scenario | each server | m2mhub / reference | issue figure | notes."""
    reference = next((s for s in servers if s != SUBJECT), None)
    header = ["scenario", *servers]
    with_ratio = reference is not None and SUBJECT in servers
    if with_ratio:
        header.append(f"{SUBJECT} / {reference}")
    if issue_label:
        header.append(issue_label)
    header.append("notes")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for scenario in scenarios:
        runs = [_find(results, scenario.key, s) for s in servers]
        notes: list[str] = []
        for run in runs:
            if run is not None:
                notes.extend(result_notes(run))
        for i, metric in enumerate(scenario.metrics):
            values = [metric_value(r, metric) for r in runs]
            label = metric.label if metric.higher_is_better else f"{metric.label} (lower is better)"
            cells = [label, *(format_value(v, metric.unit) for v in values)]
            if with_ratio:
                cells.append(
                    format_ratio(values[servers.index(SUBJECT)], values[servers.index(reference)])  # type: ignore[arg-type]
                )
            if issue_label:
                cells.append(format_value(metric.issue, metric.unit) if metric.issue else "")
            cells.append("; ".join(notes) if i == 0 else "")
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def begin_marker(group: str) -> str:
    return f"<!-- bench:{group}:begin -->"


def end_marker(group: str) -> str:
    return f"<!-- bench:{group}:end -->"


def replace_block(document: str, group: str, block: str) -> str:
    """``document`` with the text between the group's markers replaced (markers appended if new)."""
    begin, end = begin_marker(group), end_marker(group)
    wrapped = f"{begin}\n{block.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: wrapped, document, count=1)
    return document.rstrip("\n") + "\n\n" + wrapped + "\n"
