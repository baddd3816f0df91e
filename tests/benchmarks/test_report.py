"""The benchmark harness's bookkeeping: mqbench JSON in, Markdown table and README block out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2mhub.bench.report import (
    Result,
    format_ratio,
    parse_mqbench_output,
    render_table,
    replace_block,
    result_notes,
)
from m2mhub.bench.scenarios import MQTT_SCENARIOS, Metric, select

FANIN = {
    "mode": "mqtt",
    "sent": 1000,
    "expected": 1000,
    "received": 900,
    "unique": 900,
    "lost": 100,
    "duplicates": 0,
    "recv_msgs_per_s": 120000.4,
    "client_cpu_pct": 95.0,
    "client_saturated": True,
    "server": {"pid": "1", "cpu_pct": 99.0, "rss_kb_max": 5000},
    "error_total": 0,
    "errors": {},
}


def test_parse_takes_the_json_line_among_other_output() -> None:
    out = "building...\n" + json.dumps(FANIN) + "\n"
    assert parse_mqbench_output(out)["recv_msgs_per_s"] == 120000.4


def test_parse_rejects_output_without_json() -> None:
    with pytest.raises(ValueError):
        parse_mqbench_output("error: connection refused\n")


def test_metric_follows_nested_keys_and_scales() -> None:
    data = {"notify_latency_us": {"p50": 4400.0}}
    assert Metric("p50", ("notify_latency_us", "p50"), "ms", scale=0.001).value(data) == 4.4
    assert Metric("x", ("missing",), "ms").value(data) is None
    assert Metric("flag", ("client_saturated",), "").value(FANIN) is None  # bools are no numbers


def test_notes_flag_saturation_loss_and_errors() -> None:
    data = dict(FANIN, duplicates=3, errors={"sub_eof": 1})
    notes = "; ".join(result_notes(Result("fanin-q0", "m2mhub", data, exit_code=0)))
    assert "saturated" in notes
    assert "lost 100 (10.0%)" in notes
    assert "3 duplicates" in notes
    assert "sub_eof=1" in notes
    assert "m2mhub CPU 99%" in notes


def test_table_has_both_brokers_and_the_ratio() -> None:
    scenarios = select("mqtt", ["fanin-q0", "conns"])
    results = [
        Result(
            "fanin-q0",
            "mosquitto",
            dict(FANIN, recv_msgs_per_s=100000, client_saturated=False, lost=0),
        ),
        Result("fanin-q0", "m2mhub", dict(FANIN, recv_msgs_per_s=50000)),
        Result("conns", "mosquitto", {"mode": "conns", "server_rss_kb_per_conn": 0.7}),
        Result("conns", "m2mhub", error="m2mhub exited at start:\nboom"),
    ]
    table = render_table(scenarios, ["mosquitto", "m2mhub"], results)
    lines = table.splitlines()
    assert lines[0] == "| scenario | mosquitto | m2mhub | m2mhub / mosquitto | notes |"
    fanin = lines[2].split(" | ")
    assert fanin[1:4] == ["100,000", "50,000", "0.50"]
    assert "m2mhub: lost 100" in fanin[4]
    conns = lines[3].split(" | ")
    assert conns[1:4] == ["0.70 kB", "n/a", "n/a"]
    assert "m2mhub exited at start" in conns[4]


def test_ratio_formatting() -> None:
    assert format_ratio(1.0, 2.0) == "0.50"
    assert format_ratio(30.0, 2.0) == "15.0"
    assert format_ratio(None, 2.0) == "n/a"
    assert format_ratio(1.0, 0.0) == "n/a"


def test_replace_block_between_markers_keeps_the_rest() -> None:
    doc = "# B\n\n<!-- bench:mqtt:begin -->\nold\n<!-- bench:mqtt:end -->\n\n## CoAP\n"
    new = replace_block(doc, "mqtt", "| new |")
    assert "old" not in new
    assert "<!-- bench:mqtt:begin -->\n| new |\n<!-- bench:mqtt:end -->" in new
    assert new.endswith("## CoAP\n")
    again = replace_block(new, "coap", "coap table")
    assert again.count("<!-- bench:coap:begin -->") == 1
    assert "| new |" in again


def test_scenario_command_lines() -> None:
    fanin, *_, conns = MQTT_SCENARIOS
    argv = fanin.mqbench_args(port=1234, duration=3, server_pid=42, path="")
    assert argv[:5] == ["mqtt", "--host", "127.0.0.1", "--port", "1234"]
    assert argv[argv.index("--duration") + 1] == "3"
    assert argv[argv.index("--size") + 1] == "64"
    assert argv[argv.index("--server-pid") + 1] == "42"
    assert "--duration" not in conns.mqbench_args(port=1, duration=3, server_pid=2, path="")
    coap = select("coap", ["coap-get-con"])[0]
    assert "/ps/bench/get" in coap.mqbench_args(
        port=1, duration=1, server_pid=2, path="/ps/bench/get"
    )


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="fanin-q0"):
        select("mqtt", ["nope"])


def test_best_of_prefers_highest_rate_lowest_memory_and_skips_failures() -> None:
    from m2mhub.bench.runner import best_of

    fanin, conns = select("mqtt", ["fanin-q0", "conns"])
    runs = [
        Result("fanin-q0", "m2mhub", {"recv_msgs_per_s": 10.0}),
        Result("fanin-q0", "m2mhub", error="died"),
        Result("fanin-q0", "m2mhub", {"recv_msgs_per_s": 30.0}),
    ]
    assert best_of(fanin, runs).data["recv_msgs_per_s"] == 30.0
    mem = [
        Result("conns", "m2mhub", {"server_rss_kb_per_conn": 7.0}),
        Result("conns", "m2mhub", {"server_rss_kb_per_conn": 3.0}),
    ]
    assert best_of(conns, mem).data["server_rss_kb_per_conn"] == 3.0
    assert best_of(fanin, [runs[1]]).error == "died"


def test_derived_metric_growth_per_item() -> None:
    data = {"server": {"rss_kb_start": 1000, "rss_kb_max": 21000}, "registered": 10000}
    per_observer = Metric(
        "m", ("server", "rss_kb_max"), "kB", minus=("server", "rss_kb_start"), per=("registered",)
    )
    assert per_observer.value(data) == 2.0
    assert per_observer.value(dict(data, registered=0)) is None


def test_heavy_scenarios_run_only_by_name() -> None:
    assert "coap-observers-mem" not in [s.key for s in select("coap", None)]
    assert [s.key for s in select("coap", ["coap-observers-mem"])] == ["coap-observers-mem"]


def test_a_server_thread_outside_its_core_is_noted() -> None:
    pinned = Result("x", "m2mhub", {"mode": "mqtt"}, affinity=["0"], expected_affinity="0")
    assert not [n for n in result_notes(pinned) if "confined" in n]
    loose = Result("x", "m2mhub", {"mode": "mqtt"}, affinity=["0", "0-1"], expected_affinity="0")
    assert "m2mhub: threads not confined to core 0" in result_notes(loose)


def test_issue_column() -> None:
    scenarios = select("mqtt", ["pairs-q1"])
    results = [
        Result("pairs-q1", "mosquitto", {"recv_msgs_per_s": 1}),
        Result("pairs-q1", "m2mhub", {"recv_msgs_per_s": 2}),
    ]
    table = render_table(scenarios, ["mosquitto", "m2mhub"], results, "issue 2: mosquitto 2.0.11")
    header, _, row = table.splitlines()
    assert header.endswith("| issue 2: mosquitto 2.0.11 | notes |")
    assert " | 40,700 | " in row


def test_mqtt5_group_runs_the_mqtt_loads_with_5_0_clients() -> None:
    v5 = select("mqtt5", None)
    assert [s.key for s in v5] == [
        "fanin-q0-v5",
        "fanin-q1-v5",
        "fanout-q0-v5",
        "pairs-q1-v5",
        "conns-v5",
    ]
    for scenario in v5:
        argv = scenario.mqbench_args(port=1, duration=3, server_pid=2, path="")
        assert "--v5" in argv
    # The 3.1.1 table is unchanged: no 5.0 scenario in it.
    assert all("--v5" not in s.args for s in select("mqtt", None))


def test_a_3_1_1_only_broker_shows_why_in_the_mqtt5_table(tmp_path: Path) -> None:
    from m2mhub.bench.runner import RunOptions, run_one
    from m2mhub.bench.servers import Aedes

    pairs = select("mqtt5", ["pairs-q1-v5"])
    options = RunOptions("mqtt5", [Aedes()], pairs)
    result = run_one(options, tmp_path / "mqbench", pairs[0], Aedes(), tmp_path)
    assert result.error == "aedes speaks MQTT 3.1.1 only"
    table = render_table(pairs, ["mosquitto", "aedes"], [result])
    assert "| n/a |" in table
    assert "aedes: aedes speaks MQTT 3.1.1 only" in table
