"""The harness end to end, briefly: one short scenario against a real mosquitto.

It builds mqbench first if this checkout has no binary yet (cargo, a few tens of seconds once).
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
from pathlib import Path

import pytest

from m2mhub.bench.runner import coap_put
from m2mhub.cli.bench import run
from tests.support import require


def test_coap_put_encodes_path_and_payload() -> None:
    received: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]

        def answer() -> None:
            data, peer = server.recvfrom(2048)
            received.append(data)
            server.sendto(b"\x60\x44" + data[2:4], peer)  # ACK 2.04 Changed, same message id

        thread = threading.Thread(target=answer)
        thread.start()
        code = coap_put(port, "/ps/a-much-longer-segment", b"hello")
        thread.join(5)
    assert code == 0x44
    assert received[0] == (
        b"\x40\x03\x4d\x42" + b"\xb2ps" + b"\x0d\x08a-much-longer-segment" + b"\xffhello"
    )


def test_unknown_broker_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["mqtt", "--brokers", "nosuch", "--no-readme"]) == 1
    assert "unknown mqtt server 'nosuch'" in capsys.readouterr().err


@pytest.mark.timeout(600)
def test_one_short_run_against_mosquitto_writes_the_table(tmp_path: Path) -> None:
    require("mosquitto")
    if shutil.which("cargo") is None and not (Path.home() / ".cargo/bin/cargo").exists():
        pytest.skip("cargo is needed to build mqbench")
    readme = tmp_path / "README.md"
    readme.write_text("# B\n\n<!-- bench:mqtt:begin -->\n<!-- bench:mqtt:end -->\n\ntail\n")
    raw = tmp_path / "raw.json"
    argv = ["mqtt", "--brokers", "mosquitto", "--scenarios", "pairs-q1", "--duration", "1"]
    argv += ["--no-pin", "--quiet", "--readme", str(readme), "--json", str(raw)]
    assert run(argv) == 0
    text = readme.read_text()
    assert "| 50 pairs QoS 1, delivered/s | " in text
    assert "Versions: mosquitto " in text
    assert text.endswith("tail\n")
    results = json.loads(raw.read_text())["best"]
    assert results[0]["server"] == "mosquitto"
    assert results[0]["data"]["received"] > 0
    assert results[0]["data"]["lost"] == 0


def test_a_server_whose_port_is_taken_is_started_again(tmp_path: Path) -> None:
    from m2mhub.bench import servers

    class Flaky(servers.ServerKind):
        """Fails like a server that lost the race for its port, then starts on the next try."""

        name = "flaky"
        tries = 0

        def launch(
            self, repo: Path, port: int, config_lines: list[str], scratch: Path
        ) -> servers.Launch:
            Flaky.tries += 1
            if Flaky.tries == 1:
                code = "import sys; print('Error: Address already in use'); sys.exit(1)"
            else:
                code = (
                    "import socket, time; s = socket.socket(); "
                    f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(30)"
                )
            return servers.Launch([sys.executable, "-c", code], {})

    kind = Flaky()
    server = servers.start_server(kind, tmp_path, [], core=None, label="t", timeout=10)
    try:
        assert Flaky.tries == 2
        assert server.alive()
    finally:
        server.stop()
