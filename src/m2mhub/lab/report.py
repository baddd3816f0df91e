"""The lab's HTML report: one self-contained file, a results table and a sequence diagram
(inline SVG) per experiment. Nothing is fetched from the network when it is opened."""

from __future__ import annotations

import datetime
from html import escape
from pathlib import Path

from m2mhub.lab.record import Recording
from m2mhub.lab.results import Outcome

BARRIER = "/barrier/"
ROW = 26  # vertical distance between two packets
TOP = 56  # room for the lane titles
LABEL_CHARS = 72  # at least this much of a label is shown (the rest in its tooltip)
CHAR_WIDTH = 6.7  # of the 11px monospace labels
LANE_COLOURS = {
    "publisher": "#1f5fbf",
    "subscriber": "#1b8a3a",
    "client": "#1f5fbf",
}

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 4px; }
p.meta { color: #555; margin: 0 0 16px; }
table.results { border-collapse: collapse; margin: 12px 0 24px; }
table.results th, table.results td { border: 1px solid #ccc; padding: 3px 8px; text-align: left;
  vertical-align: top; }
table.results th { background: #f0f0f0; }
table.results tr.differs td { background: #fde2e2; }
td.mark { font-weight: bold; color: #b00; text-align: center; }
.summary.ok { color: #1b8a3a; font-weight: bold; }
.summary.bad { color: #b00; font-weight: bold; }
.experiment { margin-bottom: 28px; }
.experiment p { margin: 2px 0; }
svg.seq { border: 1px solid #ddd; background: #fcfcfc; }
svg.seq text { font: 11px ui-monospace, monospace; }
svg.seq text.lane { font: bold 13px system-ui, sans-serif; }
svg.seq text.label { paint-order: stroke; stroke: #fcfcfc; stroke-width: 4px; }
svg.seq text.time { fill: #888; font-size: 11px; }
"""


def _lane_x(lanes: tuple[str, ...], width: int) -> dict[str, float]:
    left, right = 110, width - 110
    step = (right - left) / max(1, len(lanes) - 1)
    return {lane: left + i * step for i, lane in enumerate(lanes)}


def _row_y(i: float) -> float:
    return TOP + 20 + i * ROW


def _gap_rows(rec: Recording, start: float, end: float | None) -> tuple[float, float]:
    """Rows (fractional) spanned by a gap: from just after the last packet before it to just
    before the first packet after it."""
    times = [a.t for a in rec.arrows]
    first = next((i for i, t in enumerate(times) if t >= start), len(times))
    last = (
        len(times)
        if end is None
        else next((i for i, t in enumerate(times) if t >= end), len(times))
    )
    return first - 0.5, last - 0.5


def sequence_svg(rec: Recording, width: int = 1100) -> str:
    """A sequence diagram: one lifeline per lane, one labelled arrow per packet."""
    rows = max(1, len(rec.arrows))
    height = int(_row_y(rows) + 10)
    xs = _lane_x(rec.lanes, width)
    out = [
        f'<svg class="seq" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
    ]
    for lane, x in xs.items():
        title = rec.titles.get(lane, "")
        out.append(
            f'<text class="lane" x="{x:.0f}" y="20" text-anchor="middle">{escape(lane)}</text>'
        )
        if title:
            out.append(
                f'<text x="{x:.0f}" y="36" text-anchor="middle" fill="#666">{escape(title)}</text>'
            )
        out.append(
            f'<line class="lifeline" x1="{x:.0f}" y1="{TOP - 8}" x2="{x:.0f}" y2="{height - 4}" '
            'stroke="#999" stroke-width="1.5"/>'
        )
    for gap in rec.gaps:
        if gap.lane not in xs:
            continue
        a, b = _gap_rows(rec, gap.start, gap.end)
        y1, y2 = max(_row_y(a), TOP - 8), _row_y(b)
        if y2 - y1 < 4:
            continue
        x = xs[gap.lane]
        # a gap in the lifeline: the lane has no connection here
        out.append(
            f'<rect class="gap" x="{x - 5:.0f}" y="{y1:.0f}" width="10" height="{y2 - y1:.0f}" '
            'fill="#fbe3e3" stroke="#d88" stroke-dasharray="3 2"/>'
        )
        out.append(
            f'<text x="{x + 10:.0f}" y="{(y1 + y2) / 2 + 4:.0f}" fill="#b55">'
            f"{escape(gap.reason)}</text>"
        )
        if gap.reason != "offline":  # the connection broke: mark where
            out.append(
                f'<text class="broken" x="{x:.0f}" y="{y1 + 8:.0f}" text-anchor="middle" '
                'fill="#c00" style="font-size: 18px">\u2717</text>'
            )
    for i, arrow in enumerate(rec.arrows):
        y = _row_y(i)
        x1, x2 = xs.get(arrow.src), xs.get(arrow.dst)
        if x1 is None or x2 is None:
            continue
        client = arrow.dst if arrow.src == rec.lanes[1] else arrow.src
        colour = LANE_COLOURS.get(client, "#555")
        weight = "2.2" if "PUBLISH" in arrow.label or " 2." in arrow.label else "1.4"
        if BARRIER in arrow.label:  # the lab's own round trips, not part of the experiment
            colour, weight = "#999", "1"
        label = arrow.label
        room = max(LABEL_CHARS, int(abs(x2 - x1) / CHAR_WIDTH))
        short = label if len(label) <= room else label[: room - 1] + "\u2026"
        out.append(f'<g class="packet"><title>{escape(label)}</title>')
        out.append(
            f'<line x1="{x1:.0f}" y1="{y + 4}" x2="{x2:.0f}" y2="{y + 4}" stroke="{colour}" '
            f'stroke-width="{weight}" marker-end="url(#head)"/>'
        )
        out.append(
            f'<text class="label" x="{(x1 + x2) / 2:.0f}" y="{y}" text-anchor="middle" '
            f'fill="{colour}">{escape(short)}</text>'
        )
        out.append(f'<text class="time" x="6" y="{y + 4}">{arrow.t * 1000:7.1f} ms</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def _results_table(outcomes: list[Outcome]) -> str:
    rows = [
        "<table class=results><tr><th></th><th>test</th><th>settings</th>"
        "<th>specification says</th><th>arrived</th><th>rule</th></tr>"
    ]
    for i, o in enumerate(outcomes):
        actual = o.actual if o.error is None else f"error: {o.error}"
        rows.append(
            f'<tr class="{"ok" if o.matches else "differs"}">'
            f"<td class=mark>{'' if o.matches else '&#10007;'}</td>"
            f'<td><a href="#exp-{i + 1}">{escape(o.name)}</a></td><td>{escape(o.settings)}</td>'
            f"<td>{escape(o.expected)}</td><td>{escape(actual)}</td><td>{escape(o.why)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def render_report(title: str, outcomes: list[Outcome], target: str = "") -> str:
    """The whole HTML document."""
    bad = sum(not o.matches for o in outcomes)
    summary = (
        f'<p class="summary ok">{len(outcomes)} experiments, all as the specification says.</p>'
        if not bad
        else f'<p class="summary bad">{len(outcomes)} experiments, {bad} differ from the '
        "specification (marked &#10007;).</p>"
    )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(target)} &middot; {when}</p>',
        summary,
        _results_table(outcomes),
    ]
    for i, o in enumerate(outcomes):
        verdict = "as the specification says" if o.matches else "DIFFERS from the specification"
        actual = o.actual if o.error is None else f"error: {o.error}"
        parts += [
            f'<section class="experiment" id="exp-{i + 1}">',
            f"<h2>{i + 1}. {escape(o.name)} <small>({escape(o.settings)})</small></h2>",
            f"<p>specification says: <b>{escape(o.expected)}</b> ({escape(o.why)})</p>",
            f"<p>arrived: <b>{escape(actual)}</b> &mdash; {verdict}</p>",
            sequence_svg(o.recording),
            "</section>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, title: str, outcomes: list[Outcome], target: str = "") -> None:
    """Write :func:`render_report` to ``path`` (UTF-8)."""
    path.write_text(render_report(title, outcomes, target), encoding="utf-8")
