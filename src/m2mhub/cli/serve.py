"""``m2mhub serve``: run the hub, with mosquitto's command-line flags and start-up lines.

    m2mhub serve [-c FILE] [-p PORT]... [-v] [--coap-port N] [--no-coap] [-h|--help]

Exit codes follow mosquitto 2.0: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the hub
cannot start (a port in use, an unreadable password or ACL file), 3 for a bad command line,
a bad configuration file or a bad line in the ACL file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from m2mhub import __version__
from m2mhub.auth import PasswordFile, PasswordFileAuthenticator, PasswordFileError
from m2mhub.auth.acl import AclError, AclFile, AclFileAuthorizer
from m2mhub.auth.scram import ScramCredentials, ScramSha256
from m2mhub.cli._serve_trace import ServeTracer
from m2mhub.cli._trace_output import TRACE_FLAGS, trace_style
from m2mhub.config import Config, ConfigError, load_config
from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.net.autosave import Autosave
from m2mhub.net.mqtt_server import MqttServer
from m2mhub.store.sqlite import PersistenceError
from m2mhub.trace.format import Style

if TYPE_CHECKING:
    from m2mhub.net.coap_face import CoapFace

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_BAD_CONFIG = 3  # mosquitto's MOSQ_ERR_INVAL, for bad flags and bad config files
MAX_CMD_PORTS = 10
DEFAULT_MQTT_PORT = 1883

USAGE = f"""\
m2mhub version {__version__}

m2mhub serve runs the hub: an MQTT v5.0/v3.1.1/v3.1 broker and a CoAP server.

Usage: m2mhub serve [-c config_file] [-p port] [-v] [--coap-port port] [--no-coap]
                    [--trace [--detail|--json]] [-w file.pcap]

 -c, --config-file : load the configuration (mosquitto.conf format) from this file.
 -p, --port        : listen on this port, bound to the loopback interface only.
                     May be given up to 10 times. Ignored if the config file
                     defines a listener (as in mosquitto 2.0).
 -v, --verbose     : enable all log types. This overrides any log_type lines
                     given in the config file.
 --coap-port       : UDP port of the CoAP face (default 5683).
 --no-coap         : do not start the CoAP face.
 --trace           : print every MQTT packet and CoAP message in and out on stderr,
                     one line each, as m2mhub trace does (--detail: fields and
                     hex dump; --json: one JSON object each; both imply --trace).
 -w file.pcap      : record all MQTT and CoAP traffic in a pcap file.
 -d, --daemon      : not supported; run m2mhub serve under a service manager.
 -h, --help        : display this help.

See docs/serve.md and docs/config.md for more information."""


class UsageError(Exception):
    """A bad command line."""


@dataclass(slots=True)
class ServeOptions:
    """The parsed command line."""

    config_file: str | None = None
    ports: list[int] = field(default_factory=list)
    verbose: bool = False
    coap_port: int | None = None
    coap: bool = True
    help: bool = False
    trace: Style | None = None
    pcap_file: str | None = None


def _port_value(flag: str, text: str | None) -> int:
    if text is None:
        raise UsageError(f"{flag} argument given, but no port specified.")
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"Invalid port specified ({text}).")
    return int(text)


VALUE_FLAGS = frozenset({"-c", "--config-file", "-p", "--port", "--coap-port", "-w"})


def parse_args(argv: list[str]) -> ServeOptions:
    """Parse ``m2mhub serve`` flags (mosquitto's, plus the CoAP ones)."""
    options = ServeOptions()
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        value: str | None = None
        if arg.startswith("--") and "=" in arg:
            arg, value = arg.split("=", 1)
        elif len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[1] in "cp":
            arg, value = arg[:2], arg[2:]

        if value is None and arg in VALUE_FLAGS and index < len(args):
            value = args[index]
            index += 1

        if arg in ("-h", "--help"):
            options.help = True
        elif arg in ("-c", "--config-file"):
            path = value
            if not path:
                raise UsageError(f"{arg} argument given, but no config file specified.")
            options.config_file = path
        elif arg in ("-p", "--port"):
            if len(options.ports) >= MAX_CMD_PORTS:
                raise UsageError(f"Only {MAX_CMD_PORTS} ports can be specified with {arg}.")
            options.ports.append(_port_value(arg, value))
        elif arg in ("-v", "--verbose"):
            options.verbose = True
        elif arg == "--coap-port":
            options.coap_port = _port_value(arg, value)
        elif arg == "--no-coap":
            options.coap = False
        elif arg in TRACE_FLAGS:
            options.trace = trace_style(options.trace, arg)
        elif arg == "-w":
            if not value:
                raise UsageError("-w argument given, but no pcap file specified.")
            options.pcap_file = value
        elif arg in ("-d", "--daemon"):
            raise UsageError(
                f"{arg} (daemon mode) is not supported by m2mhub. Run 'm2mhub serve' in the "
                "foreground under a service manager (systemd, supervisord), or with "
                "'nohup m2mhub serve &'."
            )
        else:
            raise UsageError(f"Unknown option '{arg}'.")
    return options


def apply_options(config: Config, options: ServeOptions) -> list[str]:
    """Fold the command line into the settings; returns warnings to log.

    As in mosquitto 2.0, ``-p`` ports are loopback-only and ignored when the config file
    defines a listener.
    """
    settings = config.settings
    warnings: list[str] = []
    if options.ports and not settings.local_only:
        warnings.append(
            "Warning: -p is ignored because the configuration defines listeners "
            "(as mosquitto 2.0 does)."
        )
    if options.coap_port is not None:
        settings.coap_port = options.coap_port
    if not options.coap:
        settings.coap_enabled = False
    return warnings


def can_bind(host: str, kind: socket.SocketKind = socket.SOCK_STREAM) -> bool:
    """Whether an address of this machine can be bound (containers often lack IPv6)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, kind) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def loopback_hosts() -> list[str]:
    """The loopback addresses local-only mode binds."""
    return ["127.0.0.1", "::1"] if can_bind("::1") else ["127.0.0.1"]


def mqtt_addresses(settings: BrokerSettings, cmd_ports: list[int]) -> list[tuple[str | None, int]]:
    """``(host, port)`` pairs for the MQTT listeners; host None means every interface."""
    if settings.local_only:
        ports = cmd_ports or [DEFAULT_MQTT_PORT]
        return [(host, port) for port in ports for host in loopback_hosts()]
    pairs: list[tuple[str | None, int]] = []
    for listener in settings.listeners:
        if listener.protocol != "mqtt":
            continue
        if listener.socket_domain is None:
            pairs.append((listener.bind_address, listener.port))
        else:
            pairs.extend(
                (host, listener.port)
                for host in _addresses_of(listener.bind_address, listener.socket_domain)
            )
    return pairs


def _addresses_of(host: str | None, domain: str) -> list[str]:
    """The ``socket_domain`` family's addresses of ``host`` (None: that family's any-address)."""
    if host is None:
        return ["0.0.0.0" if domain == "ipv4" else "::"]
    family = socket.AF_INET if domain == "ipv4" else socket.AF_INET6
    try:
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror:
        return [host]  # binding it reports the error
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


def coap_addresses(settings: BrokerSettings) -> list[tuple[str, int]]:
    """``(host, port)`` pairs for the CoAP face: loopback in local-only mode, else all."""
    port = settings.coap_port
    if settings.coap_bind_addresses:
        return [(host, port) for host in settings.coap_bind_addresses]
    if settings.local_only:
        return [(host, port) for host in loopback_hosts()]
    hosts = ["0.0.0.0", "::"] if can_bind("::", socket.SOCK_DGRAM) else ["0.0.0.0"]
    return [(host, port) for host in hosts]


def client_id_factory(prefix: str) -> Callable[[], str]:
    """Ids for clients that send none, like mosquitto's ``auto-F48B4E53-24B0-...``."""

    def new_id() -> str:
        return prefix + str(uuid.uuid4()).upper()

    return new_id


def _error_text(exc: OSError) -> str:
    """``Address already in use``, as mosquitto words it (not asyncio's longer text)."""
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)  # getaddrinfo errors have negative codes


def _print_error(text: str) -> None:
    print(f"Error: {text}", file=sys.stderr, flush=True)


class _Hub:
    """One running hub: the log, the broker, its MQTT listeners and its CoAP face."""

    def __init__(self, config: Config, options: ServeOptions, warnings: list[str]) -> None:
        self.config = config
        self.options = options
        self.settings = config.settings
        self.early_warnings = warnings
        self.log = BrokerLog.from_settings(self.settings, verbose=options.verbose)
        self.stop = asyncio.Event()
        self.pid_written = False
        self.authenticator: PasswordFileAuthenticator | None = None
        self.authorizer: AclFileAuthorizer | None = None
        self.broker: Broker | None = None

    def notice(self, text: str) -> None:
        if self.log.notice:
            self.log.write(text)

    def warning(self, text: str) -> None:
        if self.log.warning:
            self.log.write(text)

    def error(self, text: str, fatal: bool = False) -> None:
        """Log an error line; why the hub stops also reaches stderr whatever the log says."""
        line = text if text.startswith("Error: ") else f"Error: {text}"
        if self.log.error:
            self.log.write(line)
        if fatal and (not self.log.error or "stderr" not in self.settings.log_dest):
            print(line, file=sys.stderr, flush=True)

    def _authenticator(self) -> PasswordFileAuthenticator | None:
        path = self.settings.password_file
        if path is None:
            return None
        try:
            passwords = PasswordFile.load(path)
        except PasswordFileError as exc:
            raise _StartError(str(exc)) from None
        for problem in passwords.problems:
            self.error(problem)
        self.authenticator = PasswordFileAuthenticator(passwords)
        return self.authenticator

    def _scram_credentials(self, username: str) -> ScramCredentials | None:
        """The SCRAM verifier of a user of the (possibly reloaded) password file."""
        if self.authenticator is None:
            return None
        return self.authenticator.passwords.scram_credentials(username)

    def _authorizer(self) -> AclFileAuthorizer | None:
        path = self.settings.acl_file
        if path is None:
            return None
        try:
            acl = AclFile.load(path)
        except AclError as exc:
            # A bad line is a bad configuration (exit 3, as mosquitto); no file, a failed start.
            raise _StartError(
                str(exc), EXIT_BAD_CONFIG if exc.line is not None else EXIT_START_FAILED
            ) from None
        for warning in acl.warnings:
            self.warning(warning)
        if self.settings.coap_enabled:
            # CoAP requests carry no client identity to check; say so rather than surprise.
            self.warning(
                "Warning: acl_file applies to MQTT clients only; CoAP requests are not "
                "checked against it (coap_enabled false or --no-coap turns the CoAP face off)."
            )
        self.authorizer = AclFileAuthorizer(acl, self.notice)
        return self.authorizer

    def reload(self) -> None:
        """SIGHUP: re-read the password file and the ACL file, as mosquitto does; other
        settings stay."""
        self.notice("Reloading config.")
        self._reload_acl()
        path = self.settings.password_file
        if self.authenticator is None or path is None:
            return
        try:
            passwords = PasswordFile.load(path)
        except PasswordFileError as exc:
            self.error(f"{exc} Keeping the previous users.")
            return
        for problem in passwords.problems:
            self.error(problem)
        self.authenticator.passwords = passwords
        if self.broker is not None:
            # mosquitto 2.0.11 also drops the clients whose credentials no longer hold.
            self.broker.recheck_credentials(asyncio.get_running_loop().time())

    def _reload_acl(self) -> None:
        path = self.settings.acl_file
        if self.authorizer is None or self.broker is None or path is None:
            return
        try:
            acl = AclFile.load(path)
        except AclError as exc:
            self.error(f"{exc} Keeping the previous access control lists.")
            return
        for warning in acl.warnings:
            self.warning(warning)
        self.authorizer.acl = acl
        self.broker.set_authorizer(self.authorizer)  # forgets the answers cached for the old

    def _write_pid_file(self) -> None:
        path = self.settings.pid_file
        if path is None:
            return
        try:
            with open(path, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")
        except OSError as exc:
            raise _StartError(f"Unable to write pid file {path}: {_error_text(exc)}.") from None
        self.pid_written = True

    def _remove_pid_file(self) -> None:
        if self.pid_written and self.settings.pid_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.settings.pid_file)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # From here on SIGINT/SIGTERM mean a clean stop, even during start-up.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop.set)
        for text in self.config.notices:
            self.notice(text)
        self.notice(f"m2mhub version {__version__} starting")
        if self.config.path is None:
            self.notice("Using default config.")
        else:
            self.notice(f"Config loaded from {self.config.path}.")
        for text in [*self.config.warnings, *self.early_warnings]:
            self.warning(text)
        server = MqttServer()
        face: CoapFace | None = None
        attempted = False
        autosave: Autosave | None = None
        pcap_out: BinaryIO | None = None
        try:
            options = self.options
            if options.pcap_file is not None:
                try:
                    pcap_out = open(options.pcap_file, "wb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    raise _StartError(
                        f"Unable to open pcap file {options.pcap_file}: {exc}."
                    ) from None
            tracer = None
            if options.trace is not None or pcap_out is not None:
                tracer = ServeTracer(options.trace, pcap_out)
                server.tap = tracer
            authenticator = self._authenticator()
            authorizer = self._authorizer()
            self._write_pid_file()
            if self.settings.local_only:
                self.warning(
                    "Starting in local only mode. Connections will only be possible from "
                    "clients running on this machine."
                )
                self.warning(
                    "Create a configuration file which defines a listener to allow remote access."
                )
                self.warning("For more details see docs/config.md.")
            broker = Broker(
                self.settings,
                self.log,
                authenticator=authenticator,
                now=loop.time(),
                client_id_factory=client_id_factory(self.settings.auto_id_prefix),
                authorizer=authorizer,
            )
            if authenticator is not None:
                # MQTT 5 enhanced authentication for the password file's SCRAM entries.
                broker.add_auth_method(ScramSha256(self._scram_credentials))
            self.broker = broker
            if self.settings.persistence:
                autosave = Autosave(broker, self.settings, self.log)
                try:
                    autosave.restore(loop.time())
                except PersistenceError as exc:
                    autosave = None  # never overwrite a file we could not read
                    raise _StartError(f"{exc} Couldn't open database.") from None
            addresses = mqtt_addresses(self.settings, self.options.ports)
            attempted = True
            try:
                await server.start(broker, addresses)
            except OSError as exc:
                raise _StartError(_error_text(exc)) from None
            face = await self._start_coap(broker, tracer)
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            if autosave is not None:
                autosave.start()
                saver = autosave
                loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(saver.save()))
            self.notice(f"m2mhub version {__version__} running")
            await self.stop.wait()
            self.notice(f"m2mhub version {__version__} terminating")
            return EXIT_OK
        except _StartError as exc:
            self.error(str(exc), fatal=True)
            return exc.exit_code
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
                loop.remove_signal_handler(signum)
            if face is not None:
                face.close()
                await face.wait_closed()
            if attempted:
                await server.close()  # also closes listeners a failed start had opened
            if autosave is not None:
                await autosave.close(loop.time())  # after the clients are gone
            self._remove_pid_file()
            self.log.close()
            if pcap_out is not None:
                pcap_out.close()

    async def _start_coap(self, broker: Broker, tap: ServeTracer | None) -> CoapFace | None:
        if not self.settings.coap_enabled:
            return None
        from m2mhub.net.coap_face import start_coap_face

        try:
            return await start_coap_face(broker, coap_addresses(self.settings), self.log, tap=tap)
        except OSError as exc:
            raise _StartError(
                f"CoAP port {self.settings.coap_port}: {_error_text(exc)} "
                "(use --coap-port N or --no-coap)"
            ) from None


class _StartError(Exception):
    """The hub cannot start (the message is printed after ``Error: ``)."""

    def __init__(self, message: str, exit_code: int = EXIT_START_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _run_loop(main: Callable[[], Awaitable[int]]) -> int:
    """Run on uvloop when it is installed, else on asyncio's default loop."""

    async def entry() -> int:
        return await main()

    try:
        import uvloop
    except ImportError:
        return asyncio.run(entry())
    result: int = uvloop.run(entry())
    return result


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub serve``; returns the process exit code."""
    try:
        options = parse_args(argv)
    except UsageError as exc:
        _print_error(str(exc))
        print("Use 'm2mhub serve --help' to see usage.", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if options.help:
        print(USAGE)
        return EXIT_OK
    try:
        config = load_config(options.config_file)
    except ConfigError as exc:
        _print_error(str(exc))
        return EXIT_BAD_CONFIG
    warnings = apply_options(config, options)
    try:
        hub = _Hub(config, options, warnings)
    except OSError as exc:
        _print_error(f"Unable to open log file: {_error_text(exc)}.")
        return EXIT_START_FAILED
    return _run_loop(hub.run)
