"""Walking a mosquitto-style command line: ``-x value`` pairs, ``Error: ...`` on misuse."""

from __future__ import annotations


class UsageError(Exception):
    """A bad command line; the text follows ``Error: `` and the usage hint follows it.

    ``prefix=False`` prints the text without ``Error: `` (some of mosquitto's messages have
    none; an empty text then prints the usage hint alone).
    """

    def __init__(self, text: str, show_usage_hint: bool = True, *, prefix: bool = True) -> None:
        super().__init__(text)
        self.show_usage_hint = show_usage_hint
        self.prefix = prefix


class HelpRequested(Exception):
    """``--help`` was given."""


class ArgReader:
    """Walks argv the way mosquitto does: ``-x value`` pairs, no ``-xvalue`` bundling."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.i = 0

    def __iter__(self) -> ArgReader:
        return self

    def __next__(self) -> str:
        if self.i >= len(self.argv):
            raise StopIteration
        arg = self.argv[self.i]
        self.i += 1
        return arg

    def value(self, option: str, noun: str) -> str:
        if self.i >= len(self.argv):
            # mosquitto's text ends with a blank line before the usage hint.
            raise UsageError(f"{option} argument given but no {noun} specified.\n")
        arg = self.argv[self.i]
        self.i += 1
        return arg
