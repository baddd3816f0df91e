"""The config parser against the real mosquitto: same files accepted, same lines refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from m2mhub.config import ConfigError, load_config
from tests.support import free_tcp_port, require, running

pytestmark = pytest.mark.interop

BAD_LINES = [
    "foo bar",
    "allow_anonymous maybe",
    "allow_anonymous",
    "retain_available yes",
    "listener 70000",
    "port 0",
    "persistent_client_expiration 10",
    "persistent_client_expiration 0d",
    "log_type loud",
    "log_dest pigeon",
    "log_dest file",
    "max_keepalive 5",
    "max_keepalive 70000",
    "max_inflight_messages 70000",
    "message_size_limit 300000000",
    "sys_interval -1",
    "protocol foo",
    "socket_domain ipv5",
    "include_dir /nonexistent/m2mhub",
]


@pytest.mark.parametrize("line", BAD_LINES)
def test_lines_mosquitto_refuses_are_refused_at_the_same_place(tmp_path: Path, line: str) -> None:
    exe = require("mosquitto")
    conf = tmp_path / "bad.conf"
    conf.write_text(f"# a bad line follows\n{line}\n")
    result = subprocess.run([exe, "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 3
    assert f"Error found at {conf}:2." in result.stdout + result.stderr
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert (info.value.path, info.value.line) == (str(conf), 2)


def test_a_config_with_every_supported_line_starts_both(tmp_path: Path) -> None:
    exe = require("mosquitto")
    port = free_tcp_port()
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "limits.conf").write_text("max_queued_messages 200\nmax_queued_bytes 100000\n")
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    lines = [
        "# every mosquitto line m2mhub supports",
        "per_listener_settings false",
        f"listener {port} 127.0.0.1",
        "protocol mqtt",
        "socket_domain ipv4",
        "max_connections 100",
        "allow_anonymous true",
        f"password_file {passwords}",
        "auto_id_prefix lab-",
        "queue_qos0_messages false",
        "max_inflight_messages 20",
        "max_inflight_bytes 0",
        "message_size_limit 1000000",
        "retain_available true",
        "sys_interval 10",
        "max_keepalive 65535",
        "persistent_client_expiration 2d",
        "upgrade_outgoing_qos false",
        "connection_messages true",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_dest stderr",
        f"log_dest file {tmp_path / 'hub.log'}",
        "log_timestamp true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "persistence false",
        f"persistence_location {tmp_path}/",
        "persistence_file hub.db",
        "autosave_interval 1800",
        f"pid_file {tmp_path / 'hub.pid'}",
        "user root" if os.geteuid() == 0 else "user nobody",
        f"include_dir {conf_d}",
    ]
    conf = tmp_path / "all.conf"
    conf.write_text("\n".join(lines) + "\n")

    config = load_config(str(conf))
    assert config.settings.max_queued_messages == 200
    assert config.settings.listeners[0].port == port

    with running([exe, "-c", str(conf)]) as proc:
        proc.wait_for_line("running")
        assert "Error" not in proc.output()
