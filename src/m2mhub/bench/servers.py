"""The servers a benchmark compares: how to configure, start, recognise and stop each one.

Every server runs as its own process pinned to one core (``taskset -c CORE``), on a fresh
loopback port, with its output in a log file under ``benchmarks/.work/logs``. ``taskset`` execs
the server, so the process id it reports is the server's own (mqbench samples its CPU and RSS).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from m2mhub.bench.paths import work_dir


class ServerError(RuntimeError):
    """A server is not installed, or did not come up."""


@dataclass(frozen=True, slots=True)
class Launch:
    """What to run and which files to write first."""

    argv: list[str]
    files: dict[Path, str]
    env: dict[str, str] | None = None


class ServerKind:
    """One kind of server in the comparison (a column of the table)."""

    name: str = ""
    protocol: str = "mqtt"  # "mqtt" (TCP) or "coap" (UDP)
    # Why this server cannot run the MQTT 5.0 scenarios, or None if it speaks 5.0.
    no_mqtt5: str | None = None

    def missing(self, repo: Path) -> str | None:
        """Why this server cannot run here, or None if it can."""
        return None

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        raise NotImplementedError

    def version(self, repo: Path) -> str:
        return "unknown"

    def resource_path(self, scenario_path: str) -> str:
        """The CoAP path this server offers for the scenario's generic path."""
        return scenario_path


# mosquitto runs with its defaults, Nagle included (``set_tcp_nodelay false``). Measured on a quiet
# machine, same moment: `set_tcp_nodelay true` cuts its fan-out from 208k to 86k deliveries/s and
# its QoS 1 fan-in from 48.5k to 39.7k/s (pairs 31.9k vs 30.8k): it would handicap mosquitto.
MOSQUITTO_ONLY_CONFIG: tuple[str, ...] = ()


def mosquitto_style_config(port: int, config_lines: list[str]) -> str:
    """A mosquitto.conf with one loopback listener; both mosquitto and m2mhub read it."""
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", *config_lines]
    return "\n".join(lines) + "\n"


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else ""


class Mosquitto(ServerKind):
    name = "mosquitto"

    def missing(self, repo: Path) -> str | None:
        return None if shutil.which("mosquitto") else "mosquitto is not installed"

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        conf = scratch / f"mosquitto-{port}.conf"
        exe = shutil.which("mosquitto") or "mosquitto"
        lines = [*MOSQUITTO_ONLY_CONFIG, *config_lines]
        return Launch([exe, "-c", str(conf)], {conf: mosquitto_style_config(port, lines)})

    def version(self, repo: Path) -> str:
        line = _first_line(["mosquitto", "-h"])  # "mosquitto version 2.0.11"
        return line.split()[-1] if line else "unknown"


def _python_module_version(python: str, module: str) -> str:
    code = (
        "import importlib.metadata as m, sys\n"
        f"try: print(m.version({module!r}))\n"
        "except Exception: print('not installed')"
    )
    return _first_line([python, "-c", code]) or "unknown"


class M2mhubMqtt(ServerKind):
    """``m2mhub serve -c conf`` with the same config lines mosquitto gets."""

    name = "m2mhub"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._no_coap: bool | None = None

    def _supports_no_coap(self) -> bool:
        if self._no_coap is None:
            try:
                done = subprocess.run(
                    [self.python, "-m", "m2mhub", "serve", "--help"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                    check=False,
                )
                self._no_coap = "--no-coap" in done.stdout + done.stderr
            except (OSError, subprocess.TimeoutExpired):
                self._no_coap = False
        return self._no_coap

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        conf = scratch / f"m2mhub-{port}.conf"
        argv = [self.python, "-m", "m2mhub", "serve", "-c", str(conf)]
        if self._supports_no_coap():
            # The MQTT rows measure the broker alone; nor may a second run fight over UDP 5683.
            argv.append("--no-coap")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return Launch(argv, {conf: mosquitto_style_config(port, config_lines)}, env)

    def version(self, repo: Path) -> str:
        ours = _python_module_version(self.python, "m2mhub")
        uvloop = _python_module_version(self.python, "uvloop")
        py = _first_line([self.python, "-c", "import sys; print(sys.version.split()[0])"])
        loop = f"uvloop {uvloop}" if uvloop != "not installed" else "asyncio loop"
        commit = _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
        at = f" at {commit}" if commit and " " not in commit else ""
        return f"{ours}{at} (Python {py}, {loop})"


class Aedes(ServerKind):
    """aedes (Node.js), installed with npm into ``benchmarks/.work/node``."""

    name = "aedes"
    # aedes 1.2.0 refuses a CONNECT with protocol level 5 (lib/handlers/connect.js).
    no_mqtt5 = "aedes speaks MQTT 3.1.1 only"

    def _node_dir(self, repo: Path) -> Path:
        return work_dir(repo) / "node"

    def missing(self, repo: Path) -> str | None:
        if not shutil.which("node"):
            return "node is not installed"
        if not (self._node_dir(repo) / "node_modules" / "aedes").is_dir():
            return "aedes is not installed (npm install --prefix benchmarks/.work/node aedes)"
        return None

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        script = repo / "benchmarks" / "servers" / "aedes_server.js"
        env = dict(os.environ, NODE_PATH=str(self._node_dir(repo) / "node_modules"))
        return Launch(["node", str(script), str(port)], {}, env)

    def version(self, repo: Path) -> str:
        package = self._node_dir(repo) / "node_modules" / "aedes" / "package.json"
        try:
            import json

            version = str(json.loads(package.read_text())["version"])
        except (OSError, ValueError, KeyError):
            version = "unknown"
        return f"{version} (Node {_first_line(['node', '--version']).lstrip('v')})"


class Amqtt(ServerKind):
    """amqtt (Python), installed into its own venv ``benchmarks/.work/amqtt-venv``."""

    name = "amqtt"
    no_mqtt5 = "amqtt speaks MQTT 3.1.1 only"

    def _venv(self, repo: Path) -> Path:
        return work_dir(repo) / "amqtt-venv"

    def missing(self, repo: Path) -> str | None:
        if not (self._venv(repo) / "bin" / "amqtt").is_file():
            return "amqtt is not installed (see docs/bench.md: a venv in benchmarks/.work)"
        return None

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        conf = scratch / f"amqtt-{port}.yaml"
        text = (
            "listeners:\n"
            "  default:\n"
            "    type: tcp\n"
            f"    bind: 127.0.0.1:{port}\n"
            "    max_connections: 0\n"
            "auth:\n"
            "  allow-anonymous: true\n"
            "topic-check:\n"
            "  enabled: false\n"
        )
        return Launch([str(self._venv(repo) / "bin" / "amqtt"), "-c", str(conf)], {conf: text})

    def version(self, repo: Path) -> str:
        return _python_module_version(str(self._venv(repo) / "bin" / "python"), "amqtt")


class M2mhubCoap(ServerKind):
    """The CoAP face of ``m2mhub serve``; MQTT listens too (it shares the topic space)."""

    name = "m2mhub"
    protocol = "coap"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        conf = scratch / f"m2mhub-coap-{port}.conf"
        mqtt_port = free_port("tcp")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        argv = [self.python, "-m", "m2mhub", "serve", "-c", str(conf), "--coap-port", str(port)]
        return Launch(argv, {conf: mosquitto_style_config(mqtt_port, config_lines)}, env)

    def version(self, repo: Path) -> str:
        return M2mhubMqtt(self.python).version(repo)

    def resource_path(self, scenario_path: str) -> str:
        return "/ps" + scenario_path  # the topic bridge: /ps/bench/... is MQTT topic bench/...


class Libcoap(ServerKind):
    """libcoap's example server; ``-d`` lets a PUT create the resource the scenario uses."""

    name = "libcoap"
    protocol = "coap"

    def missing(self, repo: Path) -> str | None:
        return None if shutil.which("coap-server-notls") else "libcoap3-bin is not installed"

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        exe = shutil.which("coap-server-notls") or "coap-server-notls"
        return Launch([exe, "-A", "127.0.0.1", "-p", str(port), "-d", "100"], {})

    def version(self, repo: Path) -> str:
        for line in _all_lines(["coap-server-notls", "-?"]):
            if line.startswith("coap-server-notls v"):
                return line.split()[1].lstrip("v")
        return "unknown"


def _all_lines(argv: list[str]) -> list[str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return (done.stdout + done.stderr).splitlines()


class Aiocoap(ServerKind):
    """A small aiocoap server (``benchmarks/servers/aiocoap_server.py``) with the same resources."""

    name = "aiocoap"
    protocol = "coap"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

    def missing(self, repo: Path) -> str | None:
        if _python_module_version(self.python, "aiocoap") == "not installed":
            return "aiocoap is not installed in this Python"
        return None

    def launch(self, repo: Path, port: int, config_lines: list[str], scratch: Path) -> Launch:
        script = repo / "benchmarks" / "servers" / "aiocoap_server.py"
        return Launch([self.python, str(script), str(port)], {})

    def version(self, repo: Path) -> str:
        return _python_module_version(self.python, "aiocoap")


MQTT_SERVERS: dict[str, type[ServerKind]] = {
    "mosquitto": Mosquitto,
    "m2mhub": M2mhubMqtt,
    "aedes": Aedes,
    "amqtt": Amqtt,
}
COAP_SERVERS: dict[str, type[ServerKind]] = {
    "libcoap": Libcoap,
    "aiocoap": Aiocoap,
    "m2mhub": M2mhubCoap,
}


def free_port(kind: str) -> int:
    """A port the kernel just handed out on 127.0.0.1 (``kind`` is "tcp" or "udp")."""
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, sock_type) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tcp_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _coap_ready(port: int) -> bool:
    """A CoAP ping (empty CON) is answered with RST by any live CoAP endpoint."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(b"\x40\x00\x12\x34", ("127.0.0.1", port))
            reply, _ = s.recvfrom(64)
        except OSError:
            return False
    return len(reply) >= 4 and reply[2:4] == b"\x12\x34"


class RunningServer:
    """A started server process; ``stop()`` ends exactly this process."""

    def __init__(self, kind: ServerKind, port: int, popen: subprocess.Popen[bytes], log: Path):
        self.kind = kind
        self.port = port
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def thread_affinities(self) -> list[str]:
        """The distinct ``Cpus_allowed_list`` values of all the server's threads (Linux)."""
        found: set[str] = set()
        for status in Path(f"/proc/{self.pid}/task").glob("*/status"):
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("Cpus_allowed_list:"):
                        found.add(line.split(":", 1)[1].strip())
            except OSError:
                continue  # a thread that just ended
        return sorted(found)

    def failure_line(self) -> str:
        """The log's last line that names an error (a crash's exception), or ""."""
        for line in reversed(self.log_tail(60).splitlines()):
            if "Error" in line or "error" in line or "Traceback" in line:
                return line.strip()[:160]
        return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def start_server(
    kind: ServerKind,
    repo: Path,
    config_lines: list[str],
    core: int | None,
    label: str,
    timeout: float = 20.0,
    attempts: int = 3,
) -> RunningServer:
    """Start ``kind`` on a free loopback port and wait until it answers.

    Other programs on the machine grab ports too: a server that finds its port taken between the
    probe and its bind is started again on another one.
    """
    reason = kind.missing(repo)
    if reason:
        raise ServerError(reason)
    for attempt in range(attempts):
        try:
            return _start_once(kind, repo, config_lines, core, label, timeout)
        except _PortTaken:
            if attempt == attempts - 1:
                raise ServerError(f"{kind.name}: its port was taken {attempts} times") from None
    raise AssertionError("unreachable")


class _PortTaken(ServerError):
    pass


def _start_once(
    kind: ServerKind,
    repo: Path,
    config_lines: list[str],
    core: int | None,
    label: str,
    timeout: float,
) -> RunningServer:
    scratch = work_dir(repo) / "run"
    logs = work_dir(repo) / "logs"
    scratch.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    port = free_port("tcp" if kind.protocol == "mqtt" else "udp")
    launch = kind.launch(repo, port, config_lines, scratch)
    for path, text in launch.files.items():
        path.write_text(text)
    argv = launch.argv if core is None else ["taskset", "-c", str(core), *launch.argv]
    log = logs / f"{label}-{kind.name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=launch.env
        )
    server = RunningServer(kind, port, popen, log)
    ready = _tcp_ready if kind.protocol == "mqtt" else _coap_ready
    deadline = time.monotonic() + timeout
    while True:
        if ready(port):
            # Whoever answered, our server must still be running: one that failed to bind
            # exits within moments, while the answer came from the port's other owner.
            time.sleep(0.2)
            if server.alive():
                return server
        if not server.alive():
            tail = server.log_tail()
            if "in use" in tail.lower():
                raise _PortTaken(tail)
            raise ServerError(f"{kind.name} exited at start: {server.failure_line()}\n{tail}")
        if time.monotonic() > deadline:
            server.stop()
            raise ServerError(f"{kind.name} not answering on port {port} after {timeout:.0f}s")
        time.sleep(0.05)
