"""The specification rules the lab's expectations come from."""

from __future__ import annotations

import pytest

from m2mhub.lab import rules
from m2mhub.lab.mqtt_lab import LAB_TESTS, qos_experiments
from m2mhub.lab.results import Delivery, Outcome, table


@pytest.mark.parametrize("pub", [0, 1, 2])
@pytest.mark.parametrize("sub", [0, 1, 2])
@pytest.mark.parametrize("persistent", [False, True])
def test_offline_publish_rule(pub: int, sub: int, persistent: bool) -> None:
    got, why = rules.offline_publish("M", pub, sub, persistent)
    queued = persistent and pub > 0 and sub > 0
    assert got == ([Delivery("M", min(pub, sub))] if queued else [])
    assert why


def test_the_lab_five_tests_expect_what_the_lab_sheet_says() -> None:
    expected = {1: [], 2: ["'MESSAGE 2' q1"], 3: [], 4: [], 5: ["'MESSAGE 5' q2"]}
    rows = {e.name: e for e in qos_experiments()}
    for number, *_ in LAB_TESTS:
        assert [str(d) for d in rows[f"lab test {number}"].expected] == expected[number]


def test_retained_rules() -> None:
    assert rules.retained_late(["A", "B"], 2, 1)[0] == [Delivery("B", 1, retain=True)]
    assert rules.retained_late(["A", ""], 1, 1)[0] == []
    assert rules.retained_live("L", 1, 2)[0] == [Delivery("L", 1, retain=False)]


def test_will_rules() -> None:
    assert rules.will("W", 2, 1, retain=False, crash=True)[0] == [Delivery("W", 1)]
    assert rules.will("W", 1, 1, retain=False, crash=False)[0] == []
    assert rules.will("W", 1, 1, retain=True, crash=True)[0] == [Delivery("W", 1, retain=True)]


def test_table_marks_a_difference() -> None:
    rows = [Outcome("a", "s", "-", "-"), Outcome("b", "s", "-", "'X' q1")]
    text = table(rows).splitlines()
    assert text[2].startswith(" ")
    assert text[3].startswith("*")
    assert "1 differ" in text[-1]


@pytest.mark.parametrize("pub", [0, 1, 2])
@pytest.mark.parametrize("sub", [0, 1, 2])
def test_online_rule_downgrades_to_the_lower_qos(pub: int, sub: int) -> None:
    assert rules.live_publish("M", pub, sub)[0] == [Delivery("M", min(pub, sub))]
