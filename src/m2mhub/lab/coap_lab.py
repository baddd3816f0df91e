"""The CoAP lab: CON vs NON, a separate response, Observe, and a block-wise transfer.

Each experiment runs its exchange with :class:`m2mhub.client.coap.CoapClient`, records every
datagram, and describes what came back in a few words ("ACK 2.05 piggybacked", "empty ACK",
...). The expected words come from RFC 7252/7641/7959's rules (:func:`expect_*`), the actual
ones from the recorded datagrams, so a server that answers differently shows up as a
difference in the table.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from m2mhub.client.coap import CoapClient
from m2mhub.coap import options as o
from m2mhub.coap.message import ACK, CON, NON, RST, Message
from m2mhub.lab.record import Recording, coap_label
from m2mhub.lab.results import Outcome
from m2mhub.lab.runner import Progress, run_one

LANES = ("client", "server")
TIMEOUT = 10.0
BLOCK_SIZE = 64
SEPARATE_PATH = "async?1"
"""libcoap's example server answers ``/async?N`` after N seconds, in a separate response."""


class Exchange:
    """A CoapClient whose datagrams are recorded and kept for describing."""

    def __init__(self, rec: Recording, base: str) -> None:
        self.rec = rec
        self.base = base
        self.received: list[Message] = []
        self.sent: list[Message] = []
        self.client = CoapClient(trace=self._trace)
        rec.titles.update(client="CoAP client", server=base.removeprefix("coap://"))

    def _trace(self, direction: str, msg: Message) -> None:
        now = asyncio.get_running_loop().time()
        # the client may reuse a received message (reassembly), so keep it as it arrived
        (self.sent if direction == "send" else self.received).append(msg.copy())
        self.rec.packet(now, "client", direction == "send", coap_label(msg))

    def uri(self, path: str) -> str:
        return f"{self.base}/{path}"


def _kind(msg: Message, request_mids: set[int]) -> str:
    names = {CON: "CON", NON: "NON", ACK: "ACK", RST: "RST"}
    kind = names.get(msg.mtype or 0, "?")
    if msg.code == 0:
        return f"empty {kind}"
    code = o.code_name(msg.code).split(" ", 1)[0]
    text = f"{kind} {code}"
    if msg.mtype == ACK and msg.mid in request_mids:
        text += " piggybacked"
    elif msg.mtype in (CON, NON) and msg.mtype is not None:
        text += " separate" if msg.mtype == CON else ""
    return text


def _described(ex: Exchange) -> list[str]:
    mids = {m.mid for m in ex.sent if m.is_request() and m.mid is not None}
    return [_kind(m, mids) for m in ex.received]


# ------------------------------------------------------------------------------ the rules


def expect_get(confirmable: bool) -> tuple[list[str], str]:
    if confirmable:
        return ["ACK 2.05 piggybacked"], "a CON request answered at once: response in the ACK"
    return ["NON 2.05"], "a NON request gets a NON response, nothing is acknowledged"


def expect_separate() -> tuple[list[str], str]:
    return (
        ["empty ACK", "CON 2.05 separate"],
        "a slow answer: empty ACK now, the response later as its own CON (which the client ACKs)",
    )


def expect_observe(notifications: int) -> tuple[list[str], str]:
    return (
        ["registered 2.05 Observe"]
        + ["notification 2.05 Observe (newer)"] * notifications
        + ["deregistered 2.05 without Observe"],
        "GET Observe=0 registers, notifications carry increasing Observe, Observe=1 deregisters",
    )


def expect_blocks(body_length: int, size: int) -> tuple[list[str], str]:
    blocks = max(1, math.ceil(body_length / size))
    return (
        [
            f"{blocks} blocks of {size} bytes, last M=0",
            f"{body_length} bytes reassembled, same body",
        ],
        f"Block2: ceil({body_length}/{size}) = {blocks} blocks, M=1 on all but the last",
    )


# ------------------------------------------------------------------------------ procedures


async def plain_get(base: str, rec: Recording, confirmable: bool) -> list[str]:
    ex = Exchange(rec, base)
    try:
        await ex.client.request("GET", ex.uri("time"), confirmable=confirmable, timeout=TIMEOUT)
    finally:
        await ex.client.close()
    return _described(ex)


async def separate_get(base: str, rec: Recording) -> list[str]:
    ex = Exchange(rec, base)
    try:
        await ex.client.request("GET", ex.uri(SEPARATE_PATH), timeout=TIMEOUT)
    finally:
        await ex.client.close()
    return _described(ex)


async def observe(base: str, rec: Recording, notifications: int) -> list[str]:
    ex = Exchange(rec, base)
    out: list[str] = []
    try:
        observation = ex.client.observe(ex.uri("time"), timeout=TIMEOUT)
        await observation.start()
        last: int | None = None
        async for msg in observation:
            code = o.code_name(msg.code).split(" ", 1)[0]
            if msg.observe is None:
                out.append(f"unexpected {code} without Observe")
                break
            if last is None:
                out.append(f"registered {code} Observe")
            else:
                newer = "newer" if msg.observe > last else "older"
                out.append(f"notification {code} Observe ({newer})")
            last = msg.observe
            if len(out) > notifications:
                break
        before = len(ex.received)
        await observation.cancel(wait=TIMEOUT)
        answers = [m for m in ex.received[before:] if m.code != 0]
        for msg in answers[-1:]:
            code = o.code_name(msg.code).split(" ", 1)[0]
            with_observe = "with" if msg.observe is not None else "without"
            out.append(f"deregistered {code} {with_observe} Observe")
    finally:
        await ex.client.close()
    return out


async def blockwise(base: str, rec: Recording, size: int, body_length: list[int]) -> list[str]:
    ex = Exchange(Recording(LANES), base)
    try:
        whole = await ex.client.request("GET", ex.uri(".well-known/core"), timeout=TIMEOUT)
    finally:
        await ex.client.close()
    body_length.append(len(whole.payload))
    ex = Exchange(rec, base)
    try:
        blocked = await ex.client.request(
            "GET", ex.uri(".well-known/core"), block_size=size, timeout=TIMEOUT
        )
    finally:
        await ex.client.close()
    parts = [m.block2 for m in ex.received if m.block2 is not None]
    sizes = {o.szx_size(szx) for _, _, szx in parts}
    last_more = parts[-1][1] if parts else True
    shown = "/".join(str(s) for s in sorted(sizes)) or "?"
    same = "same body" if blocked.payload == whole.payload else "DIFFERENT body"
    return [
        f"{len(parts)} blocks of {shown} bytes, last M={int(last_more)}",
        f"{len(blocked.payload)} bytes reassembled, {same}",
    ]


# ------------------------------------------------------------------------------ the list


@dataclass(slots=True)
class CoapExperiment:
    name: str
    settings: str
    expect: Callable[[], tuple[list[str], str]]
    run: Callable[[str, Recording], Awaitable[list[str]]]


def coap_experiments() -> list[CoapExperiment]:
    """Every experiment of ``m2mhub lab coap``, in the order they run."""
    lengths: list[int] = []
    return [
        CoapExperiment(
            "CON request",
            "CON GET /time",
            partial(expect_get, True),
            partial(plain_get, confirmable=True),
        ),
        CoapExperiment(
            "NON request",
            "NON GET /time",
            partial(expect_get, False),
            partial(plain_get, confirmable=False),
        ),
        CoapExperiment(
            "separate response", f"CON GET /{SEPARATE_PATH}", expect_separate, separate_get
        ),
        CoapExperiment(
            "observe",
            "GET /time Observe=0, 1 notification, Observe=1",
            partial(expect_observe, 1),
            partial(observe, notifications=1),
        ),
        CoapExperiment(
            "block-wise transfer",
            f"GET /.well-known/core Block2 size {BLOCK_SIZE}",
            lambda: expect_blocks(lengths[-1] if lengths else 0, BLOCK_SIZE),
            partial(blockwise, size=BLOCK_SIZE, body_length=lengths),
        ),
    ]


async def run_coap(
    experiments: list[CoapExperiment], host: str, port: int, stream: TextIO | None
) -> list[Outcome]:
    """Run the experiments against ``coap://host:port``; progress on ``stream``."""
    base = f"coap://{host}:{port}" if ":" not in host else f"coap://[{host}]:{port}"
    progress = Progress(stream, len(experiments))
    outcomes = []
    for e in experiments:
        outcome = await run_one(
            e.name, e.settings, e.expect, "", partial(e.run, base), progress, lanes=LANES
        )
        outcomes.append(outcome)
    return outcomes
