"""mosquitto access control lists (``acl_file``): the file format and the decisions.

The format, as mosquitto 2.0.11 reads it::

    # a comment: '#' must be the line's first character
    topic [read|write|readwrite|deny] <topic>     (no access type: readwrite)
    user <username>
    pattern [read|write|readwrite|deny] <topic>   (%c: client id, %u: user name)

- ``topic`` lines before the first ``user`` line are for clients without a user name; after
  a ``user`` line they are that user's (several sections of one user add up).
- ``pattern`` lines apply to every client, wherever they appear.
- Words are separated by spaces only (a tab is part of a word); trailing white space is
  dropped. The topic is the rest of the line, so it may contain spaces -- which is why
  ``topic foo bar`` is an error (access type ``foo``) while ``topic read`` grants readwrite on
  the topic ``read``.
- Topics are subscription filters: ``+`` and ``#`` as in SUBSCRIBE, and a filter starting with
  a wildcard does not match ``$`` topics (``topic read $SYS/#`` is needed for ``$SYS``).

Decisions (:meth:`AclFile.allows`), mosquitto's order:

1. the client's own ``topic`` list (its user's, or the anonymous one): a matching ``deny``
   refuses, whatever comes later; a matching rule granting the access allows;
2. the ``pattern`` list, in the same way (after substitution; a pattern with ``%u`` is skipped
   for a client without a user name). When the file has patterns, a client whose user name or
   client id contains ``+`` or ``#`` is refused here (it could otherwise widen a pattern);
3. anything else is refused.

Within each list ``deny`` rules are looked at first, so a ``deny`` anywhere in the list wins
over a broader grant in it. SUBSCRIBE is always allowed: mosquitto 2.0.11's ACL file does not
check filters, it checks each message delivered (read access) instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from m2mhub.hub.auth import READ, SUBSCRIBE, WRITE
from m2mhub.mqtt.errors import TopicFilterInvalid
from m2mhub.mqtt.topics import topic_matches, validate_topic_filter

DENY = 0  # the access bits of a ``deny`` rule

ACCESS_TYPES = {"read": READ, "write": WRITE, "readwrite": READ | WRITE, "deny": DENY}

# What C's isspace() strips at the end of a line (str.rstrip() would also strip Unicode
# spaces, which mosquitto keeps).
_C_SPACE = " \t\n\v\f\r"

_SUBSTITUTION = re.compile(r"%[cu]")


class AclError(Exception):
    """An ACL file that cannot be used; ``str()`` is ``FILE:LINE: reason`` (or ``FILE: ...``)."""

    def __init__(self, reason: str, path: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.line = line

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}: {self.reason}"
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class AclRule:
    """One ``topic`` or ``pattern`` line: a filter and the access bits it grants (0: deny)."""

    topic: str
    access: int
    line: int

    @property
    def needs_username(self) -> bool:
        return "%u" in self.topic


def _deny_first(rules: list[AclRule]) -> list[AclRule]:
    return sorted(rules, key=lambda rule: rule.access != DENY)


@dataclass(slots=True)
class AclFile:
    """The rules of one ACL file. ``warnings`` are lines worth logging (as mosquitto does)."""

    path: str
    anonymous: list[AclRule] = field(default_factory=list)
    users: dict[str, list[AclRule]] = field(default_factory=dict)
    patterns: list[AclRule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> AclFile:
        """Read and parse an ACL file; raises :class:`AclError`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AclError("not valid UTF-8.", path) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise AclError(f"Unable to open acl_file: {reason}.", path) from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str = "<acl_file>") -> AclFile:
        """Parse ACL file text; raises :class:`AclError` naming the first bad line."""
        acl = cls(path)
        user: str | None = None
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.rstrip(_C_SPACE)
            if line.startswith("#"):
                continue
            keyword, _, rest = line.lstrip(" ").partition(" ")
            if not keyword:
                continue
            if keyword in ("topic", "pattern"):
                rule = _parse_rule(rest, path, number)
                if keyword == "pattern":
                    if "%c" not in rule.topic and "%u" not in rule.topic:
                        acl.warnings.append(
                            f"Warning: ACL pattern '{rule.topic}' does not contain '%c' or '%u'."
                        )
                    acl.patterns.append(rule)
                elif user is None:
                    acl.anonymous.append(rule)
                else:
                    acl.users.setdefault(user, []).append(rule)
            elif keyword == "user":
                name = rest.strip(_C_SPACE)
                if not name:
                    raise AclError("Missing username.", path, number)
                user = name
            else:
                raise AclError(f'Invalid line: unknown keyword "{keyword}".', path, number)
        acl.anonymous = _deny_first(acl.anonymous)
        acl.users = {name: _deny_first(rules) for name, rules in acl.users.items()}
        acl.patterns = _deny_first(acl.patterns)
        return acl

    def allows(
        self,
        client_id: str,
        username: str | None,
        topic: str,
        access: int,
        notice: Callable[[str], None] | None = None,
    ) -> bool:
        """Whether the client may have ``access`` (READ or WRITE) to the topic name ``topic``.

        ``notice`` receives mosquitto's line for a client refused for a dangerous name.
        """
        if access == SUBSCRIBE:
            return True
        own = self.anonymous if username is None else self.users.get(username, ())
        for rule in own:
            if topic_matches(rule.topic, topic):
                if rule.access == DENY:
                    return False
                if access & rule.access:
                    return True
        if not self.patterns:
            return False
        # A wildcard in a substituted name would widen the pattern (CVE-2017-7650).
        if username is not None and ("+" in username or "#" in username):
            if notice is not None:
                notice(f'ACL denying access to client with dangerous username "{username}"')
            return False
        if "+" in client_id or "#" in client_id:
            if notice is not None:
                notice(f'ACL denying access to client with dangerous client id "{client_id}"')
            return False
        for rule in self.patterns:
            if username is None and rule.needs_username:
                continue
            pattern = _substitute(rule.topic, client_id, username)
            if topic_matches(pattern, topic):
                if rule.access == DENY:
                    return False
                if access & rule.access:
                    return True
        return False


def _parse_rule(rest: str, path: str, number: int) -> AclRule:
    """The part of a ``topic``/``pattern`` line after the keyword."""
    access_word, sep, remainder = rest.lstrip(" ").partition(" ")
    if not access_word:
        raise AclError("Empty topic.", path, number)
    topic = remainder.strip(_C_SPACE) if sep else ""
    if topic:
        access = ACCESS_TYPES.get(access_word)
        if access is None:
            raise AclError(f'Invalid topic access type "{access_word}".', path, number)
    else:
        # One word: it is the topic, with read and write access.
        topic, access = access_word, READ | WRITE
    try:
        validate_topic_filter(topic)
    except TopicFilterInvalid:
        raise AclError(f'Invalid ACL topic "{topic}".', path, number) from None
    return AclRule(topic, access, number)


def _substitute(topic: str, client_id: str, username: str | None) -> str:
    if "%" not in topic:
        return topic
    return _SUBSTITUTION.sub(
        lambda m: client_id if m.group() == "%c" else (username or m.group()), topic
    )


class AclFileAuthorizer:
    """The broker's authorizer for ``acl_file`` (``m2mhub.hub.auth.Authorizer``).

    ``acl`` may be replaced (SIGHUP); the broker must then be told to forget cached answers.
    """

    __slots__ = ("acl", "notice")

    def __init__(self, acl: AclFile, notice: Callable[[str], None] | None = None) -> None:
        self.acl = acl
        self.notice = notice

    def check(self, client_id: str, username: str | None, topic: str, access: int) -> bool:
        """Whether the client may read, write or subscribe to ``topic`` (see :class:`AclFile`)."""
        return self.acl.allows(client_id, username, topic, access, self.notice)
