"""ACL files (``acl_file``): parsing as mosquitto 2.0.11 does, and its decisions.

The parse cases were run through mosquitto 2.0.11 itself: each line it refuses stops it with
exit 3, each it accepts starts it (tests/interop/test_acl.py repeats the decisions on both
brokers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from m2mhub.auth.acl import AclError, AclFile, AclRule
from m2mhub.hub.auth import READ, SUBSCRIBE, WRITE

RW = READ | WRITE


def parse(text: str) -> AclFile:
    return AclFile.parse(text, "acl")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("topic read foo\nbogus line\n", 'acl:2: Invalid line: unknown keyword "bogus".'),
        ("TOPIC read foo\n", 'acl:1: Invalid line: unknown keyword "TOPIC".'),
        # only a '#' in the first column starts a comment; a tab is no separator
        (" # comment\n", 'acl:1: Invalid line: unknown keyword "#".'),
        ("\ttopic read foo\n", 'acl:1: Invalid line: unknown keyword "\ttopic".'),
        ("topic\n", "acl:1: Empty topic."),
        ("pattern   \n", "acl:1: Empty topic."),
        ("topic frob foo\n", 'acl:1: Invalid topic access type "frob".'),
        ("topic foo bar\n", 'acl:1: Invalid topic access type "foo".'),
        ("topic read a/#/b\n", 'acl:1: Invalid ACL topic "a/#/b".'),
        ("\n\ntopic read a+\n", 'acl:3: Invalid ACL topic "a+".'),
        ("user\n", "acl:1: Missing username."),
        ("user   \n", "acl:1: Missing username."),
    ],
)
def test_bad_lines_name_file_and_line(text: str, error: str) -> None:
    with pytest.raises(AclError) as info:
        parse(text)
    assert str(info.value) == error


def test_sections_and_access_types() -> None:
    acl = parse(
        "# anonymous clients\n"
        "topic read a/#\n"
        "topic b\n"
        "\n"
        "user alice\n"
        "topic write x\n"
        "pattern readwrite dev/%c/#\n"
        "user  bob smith \r\n"
        "topic  deny  y/z \n"
        "user alice\n"
        "topic readwrite w/+\n"
    )
    assert acl.anonymous == [AclRule("a/#", READ, 2), AclRule("b", RW, 3)]
    assert acl.users == {
        "alice": [AclRule("x", WRITE, 6), AclRule("w/+", RW, 11)],
        "bob smith": [AclRule("y/z", 0, 9)],
    }
    assert acl.patterns == [AclRule("dev/%c/#", RW, 7)]
    assert acl.warnings == []


def test_oddities_mosquitto_accepts() -> None:
    acl = parse("topic read\ntopic read a b\ntopic read\tx\n")
    # one word is the topic; the rest of the line is the topic, spaces and tabs included
    assert acl.anonymous == [
        AclRule("read", RW, 1),
        AclRule("a b", READ, 2),
        AclRule("read\tx", RW, 3),
    ]


def test_deny_rules_come_first_in_each_list() -> None:
    acl = parse("topic read a/#\ntopic deny a/b\npattern read p/%c\npattern deny p/x\n")
    assert [rule.access for rule in acl.anonymous] == [0, READ]
    assert [rule.topic for rule in acl.patterns] == ["p/x", "p/%c"]


def test_pattern_without_substitution_warns_like_mosquitto() -> None:
    acl = parse("pattern read foo\n")
    assert acl.warnings == ["Warning: ACL pattern 'foo' does not contain '%c' or '%u'."]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.acl"
    with pytest.raises(AclError) as info:
        AclFile.load(str(path))
    assert str(info.value) == f"{path}: Unable to open acl_file: No such file or directory."
    assert info.value.line is None


ACL = """\
topic read pub/#
topic write in/#
topic deny in/secret
topic readwrite both/#
pattern readwrite dev/%c/#
pattern read u/%u/#
pattern deny dev/%c/private

user bob
topic readwrite bob/#
topic deny bob/secret
topic read dev/bob/private
"""


@pytest.mark.parametrize(
    ("client_id", "username", "topic", "access", "allowed"),
    [
        # anonymous section: only for clients without a user name
        ("a1", None, "pub/x", READ, True),
        ("a1", None, "pub/x", WRITE, False),
        ("a1", None, "in/x", WRITE, True),
        ("a1", None, "in/x", READ, False),
        ("a1", None, "in/secret", WRITE, False),  # deny wins over the broader grant
        ("a1", None, "both/x", READ, True),
        ("a1", "carol", "pub/x", READ, False),  # a user without a section: patterns only
        # patterns: %c always, %u only with a user name
        ("a1", None, "dev/a1/x", WRITE, True),
        ("a1", None, "dev/a2/x", WRITE, False),
        ("a1", None, "dev/a1/private", READ, False),
        ("a1", "carol", "u/carol/x", READ, True),
        ("a1", None, "u/%u/x", READ, False),
        # a user's own grant is decided before any pattern deny
        ("bob", "bob", "dev/bob/private", READ, True),
        ("bob", "bob", "bob/secret", READ, False),
        ("bob", "bob", "bob/x", WRITE, True),
        # '#' does not match $ topics
        ("bob", "bob", "$SYS/x", READ, False),
        # a wildcard in a name that patterns substitute refuses what patterns would decide
        ("d+x", None, "dev/d+x/1", READ, False),
        ("d+x", None, "pub/x", READ, True),
        ("ok", "e#", "u/e#/x", READ, False),
        # filters are not checked (mosquitto checks each message delivered instead)
        ("a1", None, "secret/#", SUBSCRIBE, True),
    ],
)
def test_decisions(
    client_id: str, username: str | None, topic: str, access: int, allowed: bool
) -> None:
    assert parse(ACL).allows(client_id, username, topic, access) is allowed


def test_dangerous_names_are_reported() -> None:
    seen: list[str] = []
    acl = parse(ACL)
    assert not acl.allows("d+x", None, "dev/x", READ, seen.append)
    assert not acl.allows("ok", "e#", "dev/x", READ, seen.append)
    assert seen == [
        'ACL denying access to client with dangerous client id "d+x"',
        'ACL denying access to client with dangerous username "e#"',
    ]


def test_empty_file_denies_everything() -> None:
    acl = parse("# nothing\n")
    assert not acl.allows("c", None, "t", READ)
    assert not acl.allows("c", "u", "t", WRITE)


def test_substitution_anywhere_in_a_level() -> None:
    """mosquitto's manual says a substitution must be a whole level; its code substitutes
    wherever ``%c``/``%u`` appear, and so do we."""
    acl = parse("pattern read x/pre-%c-%u\n")
    assert acl.allows("id", "me", "x/pre-id-me", READ)
