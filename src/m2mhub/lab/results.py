"""Experiment outcomes: what the specification says should arrive and what did."""

from __future__ import annotations

from dataclasses import dataclass, field

from m2mhub.lab.record import Recording


@dataclass(frozen=True, slots=True)
class Delivery:
    """One application message as the subscriber saw it."""

    payload: str
    qos: int
    retain: bool = False

    def __str__(self) -> str:
        return f"'{self.payload}' q{self.qos}{' retained' if self.retain else ''}"


def deliveries_text(items: list[Delivery] | list[str]) -> str:
    """``-`` for nothing, else the items joined by ``; ``."""
    return "; ".join(str(i) for i in items) if items else "-"


@dataclass(slots=True)
class Outcome:
    """One row of the results table."""

    name: str
    settings: str
    expected: str
    actual: str
    why: str = ""
    recording: Recording = field(default_factory=Recording)
    elapsed: float = 0.0
    error: str | None = None

    @property
    def matches(self) -> bool:
        return self.error is None and self.expected == self.actual


def table(outcomes: list[Outcome]) -> str:
    """The plain-text results table; a ``*`` marks rows where what arrived differs."""
    head = ("", "test", "settings", "specification says", "arrived")
    rows = [
        (
            " " if o.matches else "*",
            o.name,
            o.settings,
            o.expected,
            o.actual if o.error is None else f"error: {o.error}",
        )
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    bad = sum(not o.matches for o in outcomes)
    lines.append("")
    lines.append(
        f"{len(outcomes)} experiments, all as the specification says"
        if not bad
        else f"{len(outcomes)} experiments, {bad} differ from the specification (marked *)"
    )
    return "\n".join(lines)
