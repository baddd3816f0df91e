"""A bad mosquitto.conf line stops either broker at start-up, naming the file and line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import M2MHUB, free_tcp_port, require

pytestmark = pytest.mark.interop


def start_with(kind: str, conf: Path) -> subprocess.CompletedProcess[str]:
    if kind == "mosquitto":
        args = [require("mosquitto"), "-c", str(conf)]
    else:
        args = [*M2MHUB, "serve", "-c", str(conf), "--no-coap"]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=20, env=dict(os.environ), check=False
    )


@pytest.mark.parametrize("kind", ["mosquitto", "m2mhub"])
def test_unknown_config_line_stops_startup(tmp_path: Path, kind: str) -> None:
    conf = tmp_path / "broken.conf"
    conf.write_text(f"listener {free_tcp_port()} 127.0.0.1\nallow_anonymous true\nbogus_option 1\n")
    done = start_with(kind, conf)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output  # mosquitto's exit code for a config error
    assert "broken.conf:3" in output
    assert "bogus_option" in output


@pytest.mark.parametrize("kind", ["mosquitto", "m2mhub"])
@pytest.mark.parametrize("name", ["password_file", "acl_file", "auto_id_prefix", "pid_file"])
def test_duplicate_single_valued_line_stops_startup(tmp_path: Path, kind: str, name: str) -> None:
    """mosquitto 2.0.11 takes these lines once; a second one (even the same value) is an error."""
    value = tmp_path / "same-value"
    value.write_text("")
    conf = tmp_path / "dup.conf"
    conf.write_text(f"listener {free_tcp_port()} 127.0.0.1\n{name} {value}\n{name} {value}\n")
    done = start_with(kind, conf)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert f"Duplicate {name} value in configuration." in output
    assert "dup.conf:3" in output
