"""The benchmark scenarios of issues 2 (MQTT), 3 (MQTT 5.0) and 4 (CoAP), as mqbench command lines.

A scenario is one mqbench invocation against one freshly started server; it yields one or more
table rows (``Metric``), each read from mqbench's JSON output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAYLOAD_SIZE = 64

# mosquitto drops QoS 1 messages once a subscriber has 1000 queued: fan-in at full speed loses
# ~90% that way, so the QoS 1 fan-in row lifts the queue limits for every broker (0 = no limit).
# For mosquitto the in-flight window hardly matters (0, 20 and 100 gave 48k-61k/s, within noise).
LIFTED_QUEUE_LIMITS = ("max_queued_messages 0", "max_inflight_messages 0")


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the table: where its number is in mqbench's JSON, and how to show it."""

    label: str
    path: tuple[str, ...]
    unit: str  # "msg/s", "req/s", "kB", "ms"
    higher_is_better: bool = True
    scale: float = 1.0
    minus: tuple[str, ...] = ()  # subtract this value first (growth = end - start)
    per: tuple[str, ...] = ()  # then divide by this one (per connection, per observer)
    issue: float | None = None  # the reference server's figure quoted in the issue

    def value(self, data: dict[str, Any]) -> float | None:
        value = _lookup(data, self.path)
        if value is None:
            return None
        if self.minus:
            base = _lookup(data, self.minus)
            if base is None:
                return None
            value -= base
        if self.per:
            count = _lookup(data, self.per)
            if not count:
                return None
            value /= count
        return value * self.scale


def _lookup(data: dict[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One mqbench run per server. ``{path}`` in ``args`` becomes the server's resource path."""

    key: str
    group: str  # "mqtt", "mqtt5" or "coap"
    mode: str  # mqbench subcommand
    args: tuple[str, ...]
    metrics: tuple[Metric, ...]
    config: tuple[str, ...] = ()
    timed: bool = True  # takes --duration
    path: str = ""  # CoAP resource, generic form (each server maps it, see ServerKind)
    seed_put: bool = False  # PUT a value to the path first so GET has something to return
    default: bool = True  # part of a run that names no scenarios

    def mqbench_args(self, port: int, duration: float, server_pid: int, path: str) -> list[str]:
        argv = [self.mode, "--host", "127.0.0.1", "--port", str(port)]
        argv += [a.replace("{path}", path) for a in self.args]
        if self.timed:
            argv += ["--duration", f"{duration:g}"]
        argv += ["--server-pid", str(server_pid), "--label", self.key]
        return argv


def _mqtt(
    key: str,
    label: str,
    args: tuple[str, ...],
    issue: float | None,
    config: tuple[str, ...] = (),
    group: str = "mqtt",
) -> Scenario:
    metric = Metric(label, ("recv_msgs_per_s",), "msg/s", issue=issue)
    size = ("--size", str(PAYLOAD_SIZE))
    return Scenario(key, group, "mqtt", (*args, *size), (metric,), config)


MQTT_SCENARIOS: tuple[Scenario, ...] = (
    _mqtt(
        "fanin-q0",
        "fan-in QoS 0, 10 pubs -> 1 sub, delivered/s",
        ("--pubs", "10", "--subs", "1", "--qos", "0"),
        130_800,
    ),
    _mqtt(
        "fanin-q1",
        "fan-in QoS 1, 10 pubs -> 1 sub, delivered/s (queue limits lifted)",
        ("--pubs", "10", "--subs", "1", "--qos", "1"),
        48_800,
        LIFTED_QUEUE_LIMITS,
    ),
    _mqtt(
        "fanout-q0",
        "fan-out QoS 0, 1 pub -> 100 subs, deliveries/s",
        ("--pubs", "1", "--subs", "100", "--topics", "1", "--qos", "0"),
        177_000,
    ),
    _mqtt("pairs-q1", "50 pairs QoS 1, delivered/s", ("--pairs", "50", "--qos", "1"), 40_700),
    Scenario(
        "conns",
        "mqtt",
        "conns",
        ("--count", "5000", "--hold", "5"),
        (
            Metric(
                "memory per idle connection (5,000 held)",
                ("server_rss_kb_per_conn",),
                "kB",
                higher_is_better=False,
                issue=0.7,
            ),
        ),
        timed=False,
    ),
)

# The same loads with MQTT 5.0 clients (mqbench --v5: CONNECT, SUBSCRIBE and PUBLISH in the 5.0
# format, each PUBLISH with an empty property list). mqbench cannot put properties on a PUBLISH,
# so the cost of carrying them is measured by benchmarks/micro_mqtt5.py instead.
MQTT5_SCENARIOS: tuple[Scenario, ...] = (
    _mqtt(
        "fanin-q0-v5",
        "5.0: fan-in QoS 0, 10 pubs -> 1 sub, delivered/s",
        ("--v5", "--pubs", "10", "--subs", "1", "--qos", "0"),
        None,
        group="mqtt5",
    ),
    _mqtt(
        "fanin-q1-v5",
        "5.0: fan-in QoS 1, 10 pubs -> 1 sub, delivered/s (queue limits lifted)",
        ("--v5", "--pubs", "10", "--subs", "1", "--qos", "1"),
        None,
        LIFTED_QUEUE_LIMITS,
        group="mqtt5",
    ),
    _mqtt(
        "fanout-q0-v5",
        "5.0: fan-out QoS 0, 1 pub -> 100 subs, deliveries/s",
        ("--v5", "--pubs", "1", "--subs", "100", "--topics", "1", "--qos", "0"),
        None,
        group="mqtt5",
    ),
    _mqtt(
        "pairs-q1-v5",
        "5.0: 50 pairs QoS 1, delivered/s",
        ("--v5", "--pairs", "50", "--qos", "1"),
        None,
        group="mqtt5",
    ),
    Scenario(
        "conns-v5",
        "mqtt5",
        "conns",
        ("--v5", "--count", "5000", "--hold", "5"),
        (
            Metric(
                "5.0: memory per idle connection (5,000 held)",
                ("server_rss_kb_per_conn",),
                "kB",
                higher_is_better=False,
            ),
        ),
        timed=False,
    ),
)

COAP_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "coap-get-con",
        "coap",
        "coap",
        ("--path", "{path}", "--method", "GET", "--sockets", "4", "--concurrency", "32"),
        (
            Metric("GET, CON, requests/s", ("req_per_s",), "req/s", issue=87_400),
            Metric(
                "server RSS growth over the GET CON run",
                ("server", "rss_kb_end"),
                "kB",
                higher_is_better=False,
                minus=("server", "rss_kb_start"),
            ),
        ),
        path="/bench/get",
        seed_put=True,
    ),
    Scenario(
        "coap-get-non",
        "coap",
        "coap",
        ("--path", "{path}", "--method", "GET", "--non", "--sockets", "4", "--concurrency", "32"),
        (Metric("GET, NON, requests/s", ("req_per_s",), "req/s", issue=75_500),),
        path="/bench/get",
        seed_put=True,
    ),
    Scenario(
        "coap-observe",
        "coap",
        "coap-observe",
        ("--path", "{path}", "--observers", "100", "--updates", "1000"),
        (
            Metric(
                "100 observers, 1,000 PUTs back to back: notifications/s",
                ("notifications_per_s",),
                "notif/s",
                issue=33_700,
            ),
            Metric(
                "notification latency p50",
                ("notify_latency_us", "p50"),
                "ms",
                higher_is_better=False,
                scale=0.001,
                issue=4.4,
            ),
        ),
        timed=False,
        path="/bench/obs",
        seed_put=True,
    ),
    Scenario(
        "coap-observers-mem",
        "coap",
        "coap-observe",
        ("--path", "{path}", "--observers", "10000", "--updates", "3", "--drain", "5"),
        (
            Metric(
                "memory per observer (10,000 observers)",
                ("server", "rss_kb_max"),
                "kB",
                higher_is_better=False,
                minus=("server", "rss_kb_start"),
                per=("registered",),
            ),
        ),
        timed=False,
        path="/bench/mem",
        seed_put=True,
        default=False,  # 10,000 observer threads in mqbench: run it by name
    ),
)

SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "mqtt": MQTT_SCENARIOS,
    "mqtt5": MQTT5_SCENARIOS,
    "coap": COAP_SCENARIOS,
}

# The table's title for each group.
TITLES = {"mqtt": "MQTT (issue 2)", "mqtt5": "MQTT 5.0 (issue 3)", "coap": "CoAP (issue 4)"}

# Whose figures the ``issue`` values of each group are (shown as an extra column). Issue 3 quotes
# no figures, so the MQTT 5.0 table has no such column.
ISSUE_REFERENCE = {
    "mqtt": "issue 2: mosquitto 2.0.11",
    "coap": "issue 4: libcoap 4.3",
}


def select(group: str, keys: list[str] | None) -> list[Scenario]:
    """The group's scenarios, optionally only those named (in the group's order)."""
    available = SCENARIOS[group]
    if not keys:
        return [s for s in available if s.default]
    unknown = set(keys) - {s.key for s in available}
    if unknown:
        names = ", ".join(s.key for s in available)
        raise ValueError(f"unknown {group} scenario(s) {sorted(unknown)}; known: {names}")
    return [s for s in available if s.key in keys]
