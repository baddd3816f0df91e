"""Topic name and filter rules, shared subscriptions and the reference matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from m2mhub.mqtt.errors import TopicFilterInvalid, TopicNameInvalid
from m2mhub.mqtt.topics import (
    split_levels,
    split_shared,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)
from tests.mqtt.strategies import topic_filters, topic_names


@pytest.mark.parametrize("name", ["a", "a/b", "/", "a//b", "/a", "a/", "$SYS/x", " ", "\u00e9"])
def test_valid_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize("name", ["", "a/+", "+", "#", "a/#", "a+b", "a#", "a\x00b", "x" * 65536])
def test_invalid_names(name: str) -> None:
    with pytest.raises(TopicNameInvalid):
        validate_topic_name(name)


@pytest.mark.parametrize(
    "f", ["a", "#", "+", "a/#", "a/+", "+/+", "+/#", "/#", "a//+", "$SYS/#", "$share/g"]
)
def test_valid_filters(f: str) -> None:
    validate_topic_filter(f)


@pytest.mark.parametrize("f", ["", "a#", "a/#/b", "#/", "a+", "+a/b", "a/b+", "##", "a\x00"])
def test_invalid_filters(f: str) -> None:
    with pytest.raises(TopicFilterInvalid):
        validate_topic_filter(f)


@pytest.mark.parametrize("f", ["$share/g/a", "$share/g/#", "$share/g/+/x", "$share/group/a//b"])
def test_valid_shared(f: str) -> None:
    validate_topic_filter(f, shared=True)


@pytest.mark.parametrize(
    "f", ["$share/g", "$share/g/", "$share//a", "$share/g+/a", "$share/#/a", "$share/g/a#"]
)
def test_invalid_shared(f: str) -> None:
    with pytest.raises(TopicFilterInvalid):
        validate_topic_filter(f, shared=True)


def test_share_prefix_is_an_ordinary_level_without_the_flag() -> None:
    validate_topic_filter("$share/g")
    validate_topic_filter("$share//a")


def test_split_helpers() -> None:
    assert split_levels("a//b") == ["a", "", "b"]
    assert split_shared("$share/g/a/b") == ("g", "a/b")
    assert split_shared("a/b") == (None, "a/b")


@pytest.mark.parametrize(
    ("f", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/+", "a/", True),
        ("a/#", "a", True),  # '#' also matches the parent level
        ("a/#", "a/b/c", True),
        ("#", "a/b", True),
        ("+/+", "/a", True),
        ("+", "/a", False),
        ("/+", "/a", True),
        ("#", "$SYS/uptime", False),  # $-topics are not matched by a leading wildcard
        ("+/uptime", "$SYS/uptime", False),
        ("$SYS/#", "$SYS/uptime", True),
        ("$SYS/+", "$SYS/uptime", True),
        ("a/b/c", "a/b", False),
        ("a", "a/b", False),
    ],
)
def test_matches(f: str, topic: str, expected: bool) -> None:
    assert topic_matches(f, topic) is expected


@settings(max_examples=200, deadline=None)
@given(topic_names)
def test_a_name_matches_itself_and_hash(name: str) -> None:
    validate_topic_name(name)
    validate_topic_filter(name)
    assert topic_matches(name, name)
    assert topic_matches("#", name) is not name.startswith("$")


@settings(max_examples=200, deadline=None)
@given(topic_filters(), topic_names)
def test_filter_matches_agree_with_a_regular_expression(f: str, name: str) -> None:
    import re

    validate_topic_filter(f)
    pattern = "/".join(
        "[^/]*" if level == "+" else ".*" if level == "#" else re.escape(level)
        for level in f.split("/")
    )
    if f.endswith("/#"):
        pattern = pattern[: -len("/.*")] + "(/.*)?"
    expected = re.fullmatch(pattern, name, re.S) is not None
    if name.startswith("$") and f[0] in "+#":
        expected = False
    assert topic_matches(f, name) is expected
