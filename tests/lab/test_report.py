"""The HTML report: self-contained, and rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from m2mhub.cli import lab as lab_cli
from m2mhub.lab.record import Recording
from m2mhub.lab.report import render_report, sequence_svg
from m2mhub.lab.results import Outcome
from tests.support import require

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    exe = require("chromium")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=90,
        )


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) scanlines of a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_report_is_self_contained_and_has_a_diagram_per_experiment() -> None:
    rec = Recording()
    rec.packet(0.0, "subscriber", True, "CONNECT (p4, c1, k60, id 'Sub1')")
    rec.offline(0.1, "subscriber")
    rec.packet(0.2, "publisher", True, "PUBLISH (d0, q1, r0, m1, 'a/b', 9 bytes) <&>")
    rec.online(0.3, "subscriber")
    html = render_report("t", [Outcome("x", "s", "-", "-", recording=rec)] * 2)
    assert html.count("<svg") == 2
    assert "&lt;&amp;&gt;" in html  # labels are escaped
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched
    svg = sequence_svg(rec)
    assert svg.count('class="packet"') == 2
    assert 'class="gap"' in svg  # the subscriber's disconnect


def test_chromium_renders_the_qos_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    assert lab_cli.run(["qos", "-q", "-k", "lab test", "--report", str(report)]) == 0
    dom = chromium("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert dom.stdout.count("<svg") == 5
    assert dom.stdout.count('class="packet"') > 5 * 10
    assert "offline" in dom.stdout
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,1600", report.as_uri())
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1200, 1600)
    assert len(set(pixels)) > 32  # not a blank page: text, lines and colours


def test_chromium_renders_the_coap_report(tmp_path: Path) -> None:
    report = tmp_path / "coap.html"
    assert lab_cli.run(["coap", "-q", "--report", str(report)]) == 0
    dom = chromium("--dump-dom", report.as_uri())
    assert dom.stdout.count("<svg") == 5
    assert "Observe=1" in dom.stdout
