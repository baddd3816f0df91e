"""``m2mhub serve`` run as a user runs it: a subprocess, real ports, real mosquitto clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from m2mhub.auth import hash_password
from tests.support import (
    M2MHUB,
    Proc,
    free_tcp_port,
    free_udp_port,
    require,
    running,
    wait_tcp,
)

ENV = dict(os.environ, PYTHONUNBUFFERED="1")
VERSION_LINE = "m2mhub version 0.1.0"


@contextmanager
def serve(*args: str) -> Iterator[Proc]:
    with running([*M2MHUB, "serve", *args], env=ENV) as proc:
        yield proc


def run_serve(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*M2MHUB, "serve", *args], capture_output=True, text=True, timeout=timeout, env=ENV
    )


def terminate(proc: Proc, signum: int = signal.SIGTERM) -> int:
    proc.popen.send_signal(signum)
    return proc.wait(10)


def listening_addresses(port: int, proto: str = "tcp") -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a LISTEN socket on ``port``.

    With ``proto="udp"``: the addresses of unconnected UDP sockets bound to ``port``.
    """
    state = "0A" if proto == "tcp" else "07"  # TCP_LISTEN, or TCP_CLOSE for bound UDP
    found: set[str] = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == state:
                found.add(address)
    return found


IPV4_LOOPBACK = "0100007F"
IPV6_LOOPBACK = "00000000000000000000000001000000"
IPV4_ANY = "00000000"
IPV6_ANY = "0" * 32


def write_conf(tmp_path: Path, *lines: str) -> Path:
    conf = tmp_path / "m2mhub.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


# ---------------------------------------------------------------------- command line


def test_help() -> None:
    for flag in ("--help", "-h"):
        result = run_serve(flag)
        assert result.returncode == 0
        assert "Usage: m2mhub serve [-c config_file]" in result.stdout
        assert "--no-coap" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-x"], "Error: Unknown option '-x'."),
        (["-p"], "Error: -p argument given, but no port specified."),
        (["-p", "0"], "Error: Invalid port specified (0)."),
        (["-p", "http"], "Error: Invalid port specified (http)."),
        (["-c"], "Error: -c argument given, but no config file specified."),
        (["-d"], "Error: -d (daemon mode) is not supported by m2mhub."),
    ],
)
def test_bad_command_lines_exit_3_like_mosquitto(args: list[str], message: str) -> None:
    result = run_serve(*args)
    assert result.returncode == 3
    assert message in result.stderr


# ---------------------------------------------------------------------- start, run, stop


@pytest.mark.interop
def test_default_config_local_only_lines_publish_and_sigterm() -> None:
    pub = require("mosquitto_pub")
    port = free_tcp_port()
    with serve("-p", str(port), "-v", "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        lines = proc.output()
        for expected in (
            f"{VERSION_LINE} starting",
            "Using default config.",
            "Starting in local only mode. Connections will only be possible from clients "
            "running on this machine.",
            f"Opening ipv4 listen socket on port {port}.",
        ):
            assert expected in lines
        first = proc.lines[0]
        assert first.split(": ", 1)[0].isdigit(), first  # mosquitto's Unix-seconds stamp
        addresses = listening_addresses(port)
        assert IPV4_LOOPBACK in addresses
        assert addresses <= {IPV4_LOOPBACK, IPV6_LOOPBACK}

        result = subprocess.run(
            [
                pub,
                "-p",
                str(port),
                "-i",
                "pub1",
                "-t",
                "test/message",
                "-m",
                "MESSAGE 3",
                "-q",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, result.stderr
        proc.wait_for_line("Received PUBLISH from pub1 (d0, q1, r0, m1, 'test/message'")
        assert terminate(proc) == 0
        assert f"{VERSION_LINE} terminating" in proc.output()


def test_sigint_is_a_clean_shutdown_too() -> None:
    port = free_tcp_port()
    with serve("-p", str(port), "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert terminate(proc, signal.SIGINT) == 0
        assert f"{VERSION_LINE} terminating" in proc.output()
        assert "Traceback" not in proc.output()


def test_several_ports(tmp_path: Path) -> None:
    ports = [free_tcp_port(), free_tcp_port()]
    with serve("-p", str(ports[0]), "-p", str(ports[1]), "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        for port in ports:
            wait_tcp(port)


def test_config_listener_on_all_interfaces_and_ignored_p(tmp_path: Path) -> None:
    port = free_tcp_port()
    conf = write_conf(tmp_path, f"listener {port}", "allow_anonymous true")
    with serve("-c", str(conf), "-p", str(free_tcp_port()), "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        output = proc.output()
        assert f"Config loaded from {conf}." in output
        assert "Warning: -p is ignored because the configuration defines listeners" in output
        assert "local only mode" not in output
        assert IPV4_ANY in listening_addresses(port)
        wait_tcp(port)


def test_config_file_errors_stop_start_up_with_file_and_line(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "# hub", f"listener {free_tcp_port()}", "foo bar")
    result = run_serve("-c", str(conf))
    assert result.returncode == 3
    assert f'Error: {conf}:3: Unknown configuration variable "foo".' in result.stderr
    assert "starting" not in result.stderr


def test_unsupported_config_line_is_named(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, f"listener {free_tcp_port()}", "psk_file /etc/mosquitto/psk")
    result = run_serve("-c", str(conf))
    assert result.returncode == 3
    assert f"Error: {conf}:2: 'psk_file' is not supported by m2mhub yet." in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_serve("-c", str(tmp_path / "nope.conf"))
    assert result.returncode == 3
    assert f"Error: Unable to open config file {tmp_path / 'nope.conf'}." in result.stderr


def test_port_in_use_exits_1() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_serve("-p", str(port), "--no-coap")
    assert result.returncode == 1
    assert "Error: Address already in use" in result.stderr
    assert f"{VERSION_LINE} running" not in result.stderr


def test_log_file_pid_file_and_timestamp_format(tmp_path: Path) -> None:
    port = free_tcp_port()
    log_file = tmp_path / "hub.log"
    pid_file = tmp_path / "hub.pid"
    conf = write_conf(
        tmp_path,
        f"listener {port} 127.0.0.1",
        f"log_dest file {log_file}",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        f"pid_file {pid_file}",
        "user mosquitto",
    )
    with serve("-c", str(conf), "--no-coap") as proc:
        wait_tcp(port)
        assert pid_file.read_text().strip() == str(proc.popen.pid)
        assert terminate(proc) == 0
        assert proc.output() == ""  # everything went to the file
    text = log_file.read_text()
    assert "Ignoring 'user mosquitto'" in text
    assert f"{VERSION_LINE} terminating" in text
    stamp = text.splitlines()[0].split(": ", 1)[0]
    assert time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")
    assert not pid_file.exists()


# ---------------------------------------------------------------------- authentication


@pytest.mark.interop
def test_password_file_from_mosquitto_passwd(tmp_path: Path) -> None:
    passwd_exe = require("mosquitto_passwd")
    pub = require("mosquitto_pub")
    passwords = tmp_path / "passwd"
    subprocess.run(
        [passwd_exe, "-c", "-b", str(passwords), "alice", "secret"], check=True, timeout=10
    )
    port = free_tcp_port()
    conf = write_conf(
        tmp_path,
        f"listener {port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {passwords}",
    )

    def publish(*credentials: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pub, "-p", str(port), "-t", "a/b", "-m", "x", *credentials],
            capture_output=True,
            text=True,
            timeout=10,
        )

    with serve("-c", str(conf), "-v", "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        anonymous = publish()
        assert anonymous.returncode == 5
        assert "Connection error: Connection Refused: not authorised." in anonymous.stderr
        wrong = publish("-u", "alice", "-P", "guess")
        assert wrong.returncode == 5
        assert "not authorised" in wrong.stderr
        good = publish("-u", "alice", "-P", "secret", "-i", "alice1")
        assert good.returncode == 0, good.stderr
        proc.wait_for_line("Received PUBLISH from alice1")
        assert "u'alice'" in proc.wait_for_line("New client connected from")


def test_listener_without_allow_anonymous_refuses_anonymous_clients(tmp_path: Path) -> None:
    pub = require("mosquitto_pub")
    port = free_tcp_port()
    conf = write_conf(tmp_path, f"listener {port} 127.0.0.1")
    with serve("-c", str(conf), "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        result = subprocess.run(
            [pub, "-p", str(port), "-t", "a", "-m", "x"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 5
        assert "Connection Refused: not authorised." in result.stderr


def test_missing_password_file_exits_1(tmp_path: Path) -> None:
    conf = write_conf(
        tmp_path, f"listener {free_tcp_port()} 127.0.0.1", f"password_file {tmp_path / 'nope'}"
    )
    result = run_serve("-c", str(conf), "--no-coap")
    assert result.returncode == 1
    assert "Error: Unable to open pwfile" in result.stderr


def test_bad_acl_file_line_exits_3_with_file_and_line(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read a/#\ntopic frob b\n")
    conf = write_conf(tmp_path, f"listener {free_tcp_port()} 127.0.0.1", f"acl_file {acl}")
    result = run_serve("-c", str(conf), "--no-coap")
    assert result.returncode == 3  # mosquitto: 3 too
    assert f'Error: {acl}:2: Invalid topic access type "frob".' in result.stderr
    assert "running" not in result.stderr


def test_missing_acl_file_exits_1(tmp_path: Path) -> None:
    acl = tmp_path / "nope"
    conf = write_conf(tmp_path, f"listener {free_tcp_port()} 127.0.0.1", f"acl_file {acl}")
    result = run_serve("-c", str(conf), "--no-coap")
    assert result.returncode == 1  # like a missing password_file (mosquitto: 13 for both)
    assert f"Error: {acl}: Unable to open acl_file: No such file or directory." in result.stderr


def test_acl_file_warnings_are_logged(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("pattern read foo\n")
    port = free_tcp_port()
    conf = write_conf(
        tmp_path,
        f"listener {port} 127.0.0.1",
        f"acl_file {acl}",
        f"coap_port {free_udp_port()}",
    )
    coap_warning = "Warning: acl_file applies to MQTT clients only; CoAP requests are not checked"
    with serve("-c", str(conf)) as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert "Warning: ACL pattern 'foo' does not contain '%c' or '%u'." in proc.output()
        assert coap_warning in proc.output()
        assert terminate(proc) == 0
    with serve("-c", str(conf), "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert coap_warning not in proc.output()
        assert terminate(proc) == 0


# ---------------------------------------------------------------------- the CoAP face


@pytest.mark.interop
def test_coap_face_on_loopback_in_local_only_mode() -> None:
    client = require("coap-client-notls")
    port, coap_port = free_tcp_port(), free_udp_port()
    with serve("-p", str(port), "--coap-port", str(coap_port)) as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert f"Opening ipv4 CoAP socket on port {coap_port}." in proc.output()
        addresses = listening_addresses(coap_port, "udp")
        assert IPV4_LOOPBACK in addresses
        assert addresses <= {IPV4_LOOPBACK, IPV6_LOOPBACK}
        result = subprocess.run(
            [client, "-m", "get", "-B", "5", f"coap://127.0.0.1:{coap_port}/.well-known/core"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert "</time>" in result.stdout
        assert terminate(proc) == 0


def test_coap_face_on_every_interface_with_a_listener(tmp_path: Path) -> None:
    port, coap_port = free_tcp_port(), free_udp_port()
    conf = write_conf(tmp_path, f"listener {port} 127.0.0.1", f"coap_port {coap_port}")
    with serve("-c", str(conf)) as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert IPV4_ANY in listening_addresses(coap_port, "udp")
        assert terminate(proc) == 0


def test_no_coap_flag_and_config_line(tmp_path: Path) -> None:
    port = free_tcp_port()
    conf = write_conf(tmp_path, f"listener {port} 127.0.0.1", "coap_enabled false")
    for args in (["-p", str(port), "--no-coap"], ["-c", str(conf)]):
        with serve(*args) as proc:
            proc.wait_for_line(f"{VERSION_LINE} running")
            assert "CoAP socket" not in proc.output()
            assert terminate(proc) == 0


def test_coap_port_in_use_exits_1_and_frees_the_mqtt_port() -> None:
    port = free_tcp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        coap_port = holder.getsockname()[1]
        result = run_serve("-p", str(port), "--coap-port", str(coap_port))
    assert result.returncode == 1
    assert (
        f"Error: CoAP port {coap_port}: Address already in use (use --coap-port N or --no-coap)"
        in result.stderr
    )
    assert listening_addresses(port) == set()


@pytest.mark.interop
def test_sighup_reloads_the_password_file(tmp_path: Path) -> None:
    pub = require("mosquitto_pub")
    passwords = tmp_path / "passwd"
    passwords.write_text(f"alice:{hash_password('secret')}\n")
    port = free_tcp_port()
    conf = write_conf(tmp_path, f"listener {port} 127.0.0.1", f"password_file {passwords}")

    def publish_as_bob() -> int:
        return subprocess.run(
            [pub, "-p", str(port), "-t", "t", "-m", "m", "-u", "bob", "-P", "pw"],
            capture_output=True,
            text=True,
            timeout=10,
        ).returncode

    with serve("-c", str(conf), "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert publish_as_bob() == 5
        with passwords.open("a") as handle:
            handle.write(f"bob:{hash_password('pw', 'sha512')}\n")
        mark = len(proc.lines)
        proc.popen.send_signal(signal.SIGHUP)
        proc.wait_for_line("Reloading config.", start=mark)
        assert publish_as_bob() == 0
        assert terminate(proc) == 0


@pytest.mark.interop
def test_sighup_reloads_the_acl_file(tmp_path: Path) -> None:
    pub = require("mosquitto_pub")
    acl = tmp_path / "acl"
    acl.write_text("topic read t\n")
    port = free_tcp_port()
    conf = write_conf(
        tmp_path, f"listener {port} 127.0.0.1", "allow_anonymous true", f"acl_file {acl}"
    )

    def publish() -> str:
        done = subprocess.run(
            [pub, "-p", str(port), "-t", "t", "-m", "m", "-q", "1", "-V", "5"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    with serve("-c", str(conf), "--no-coap", "-v") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert publish() == "Warning: Publish 1 failed: Not authorized.\n"
        acl.write_text("topic readwrite t\n")
        mark = len(proc.lines)
        proc.popen.send_signal(signal.SIGHUP)
        proc.wait_for_line("Reloading config.", start=mark)
        assert publish() == ""
        # A file that became bad keeps the rules in force, and says why.
        acl.write_text("topic frob t\n")
        mark = len(proc.lines)
        proc.popen.send_signal(signal.SIGHUP)
        proc.wait_for_line(
            f'Error: {acl}:1: Invalid topic access type "frob". '
            "Keeping the previous access control lists.",
            start=mark,
        )
        assert publish() == ""
        assert terminate(proc) == 0


def test_fatal_errors_reach_stderr_when_logging_to_a_file(tmp_path: Path) -> None:
    log_file = tmp_path / "hub.log"
    conf = write_conf(
        tmp_path,
        f"listener {free_tcp_port()} 127.0.0.1",
        f"log_dest file {log_file}",
        f"password_file {tmp_path / 'nope'}",
    )
    result = run_serve("-c", str(conf), "--no-coap")
    assert result.returncode == 1
    assert "Error: Unable to open pwfile" in result.stderr
    assert "Error: Unable to open pwfile" in log_file.read_text()


def test_unwritable_log_file_exits_1(tmp_path: Path) -> None:
    conf = write_conf(
        tmp_path, f"listener {free_tcp_port()}", f"log_dest file {tmp_path / 'no' / 'dir.log'}"
    )
    result = run_serve("-c", str(conf), "--no-coap")
    assert result.returncode == 1
    assert "Error: Unable to open log file: No such file or directory." in result.stderr


@pytest.mark.interop
def test_log_type_lines_and_v_overriding_them(tmp_path: Path) -> None:
    pub = require("mosquitto_pub")
    port = free_tcp_port()
    conf = write_conf(
        tmp_path, f"listener {port} 127.0.0.1", "allow_anonymous true", "log_type error"
    )

    def publish(client_id: str) -> None:
        subprocess.run(
            [pub, "-p", str(port), "-i", client_id, "-t", "t", "-m", "m"],
            check=True,
            capture_output=True,
            timeout=10,
        )

    with serve("-c", str(conf), "--no-coap") as quiet:
        wait_tcp(port)
        publish("quiet1")
        assert terminate(quiet) == 0
        assert quiet.output() == ""  # only errors are logged, and there were none
    with serve("-c", str(conf), "-v", "--no-coap") as loud:
        loud.wait_for_line(f"{VERSION_LINE} running")
        publish("loud1")
        loud.wait_for_line("Received PUBLISH from loud1 (d0, q0, r0, m0, 't', ... (1 bytes))")


def test_socket_domain_ipv4_listens_on_ipv4_only(tmp_path: Path) -> None:
    port = free_tcp_port()
    conf = write_conf(tmp_path, f"listener {port}", "socket_domain ipv4")
    with serve("-c", str(conf), "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        assert listening_addresses(port) == {IPV4_ANY}
        assert f"Opening ipv6 listen socket on port {port}." not in proc.output()


@pytest.mark.interop
def test_auto_id_prefix_names_clients_without_an_id(tmp_path: Path) -> None:
    pub = require("mosquitto_pub")
    port = free_tcp_port()
    conf = write_conf(
        tmp_path, f"listener {port} 127.0.0.1", "allow_anonymous true", "auto_id_prefix lab-"
    )
    with serve("-c", str(conf), "-v", "--no-coap") as proc:
        proc.wait_for_line(f"{VERSION_LINE} running")
        subprocess.run(
            [pub, "-p", str(port), "-t", "t", "-m", "m"],
            check=True,
            capture_output=True,
            timeout=10,
        )
        line = proc.wait_for_line("New client connected from")
        assert " as lab-" in line
