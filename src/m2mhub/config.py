"""Read a ``mosquitto.conf`` into :class:`~m2mhub.hub.settings.BrokerSettings`.

The file format and semantics are mosquitto 2.0's:

- a line whose first non-blank character is ``#`` is a comment; blank lines are skipped;
  a ``#`` after whitespace starts a trailing comment (mosquitto tolerates those too);
- each line is ``name value``; values are checked (booleans are ``true``/``false``, numbers
  are range-checked) and any bad line stops start-up with ``FILE:LINE: reason``;
- ``include_dir DIR`` (main file only) reads ``DIR/*.conf`` in mosquitto's order;
- no ``listener``, ``port`` or ``bind_address`` at all means local-only mode: port 1883 on
  the loopback interfaces with anonymous clients allowed; otherwise ``allow_anonymous``
  defaults to false.

Lines mosquitto knows but m2mhub does not implement yet are refused by name, never ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from m2mhub.hub.settings import BrokerSettings, Listener

MAX_PORT = 65535
MQTT_MAX_PAYLOAD = 268_435_455
# The largest MQTT packet: that remaining length plus a 5-byte fixed header.
MQTT_MAX_PACKET = MQTT_MAX_PAYLOAD + 5

LOG_TYPES = frozenset(
    {
        "debug",
        "error",
        "warning",
        "notice",
        "information",
        "subscribe",
        "unsubscribe",
        "websockets",
        "none",
        "all",
    }
)

# mosquitto's persistent_client_expiration units, in seconds (a month is 30 days, a year 365).
DURATION_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}

# Lines mosquitto 2.0 understands that m2mhub does not implement yet.
UNSUPPORTED = frozenset(
    {
        # security
        "allow_duplicate_messages",
        "allow_zero_length_clientid",
        "auth_plugin",
        "auth_plugin_deny_special_chars",
        "check_retain_source",
        "clientid_prefixes",
        "plugin",
        "global_plugin",
        "psk_file",
        "psk_hint",
        "use_identity_as_username",
        "use_subject_as_username",
        "use_username_as_clientid",
        # general
        "log_facility",
        "memory_limit",
        # listeners
        "bind_interface",
        "http_dir",
        "max_topic_alias",
        "mount_point",
        "websockets_log_level",
        "websockets_headers_size",
        # TLS
        "cafile",
        "capath",
        "certfile",
        "ciphers",
        "ciphers_tls1.3",
        "crlfile",
        "dhparamfile",
        "keyfile",
        "require_certificate",
        "tls_engine",
        "tls_engine_kpass_sha1",
        "tls_keyform",
        "tls_version",
        # bridges
        "address",
        "addresses",
        "bridge_attempt_unsubscribe",
        "bridge_bind_address",
        "bridge_max_packet_size",
        "bridge_outgoing_retain",
        "bridge_protocol_version",
        "cleansession",
        "local_cleansession",
        "connection",
        "keepalive_interval",
        "idle_timeout",
        "local_clientid",
        "local_password",
        "local_username",
        "notifications",
        "notifications_local_only",
        "notification_topic",
        "remote_clientid",
        "remote_password",
        "remote_username",
        "restart_timeout",
        "round_robin",
        "start_type",
        "threshold",
        "topic",
        "try_private",
        "bridge_alpn",
        "bridge_cafile",
        "bridge_capath",
        "bridge_certfile",
        "bridge_identity",
        "bridge_insecure",
        "bridge_keyfile",
        "bridge_psk",
        "bridge_require_ocsp",
        "bridge_tls_version",
    }
)
UNSUPPORTED_PREFIXES = ("auth_opt_", "plugin_opt_")

# Settings the parser accepts and validates but the broker core does not act on yet: a
# non-default value gets a start-up warning instead of silently doing nothing.
NOT_YET_ENFORCED: tuple[str, ...] = ()

_TRAILING_COMMENT = re.compile(r"\s#.*$")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is ``FILE:LINE: reason`` when the place is known."""

    def __init__(self, reason: str, path: str | None = None, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.line = line

    def __str__(self) -> str:
        if self.path is not None and self.line is not None:
            return f"{self.path}:{self.line}: {self.reason}"
        if self.path is not None:
            return f"{self.path}: {self.reason}"
        return self.reason


@dataclass(slots=True)
class Config:
    """What a config file gave: the settings plus start-up messages to log.

    ``notices`` and ``warnings`` are logged (as mosquitto would) once the log is open.
    """

    settings: BrokerSettings
    path: str | None = None
    notices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Parser:
    """Parsing state across the main file and its ``include_dir`` files."""

    def __init__(self) -> None:
        self.settings = BrokerSettings()
        self.notices: list[str] = []
        self.warnings: list[str] = []
        self.default_listener: Listener | None = None
        self.current: Listener | None = None  # the listener that listener options apply to
        self.pending_socket_domain: str | None = None  # for a default listener made later
        self.allow_anonymous_set = False
        self.log_types_set = False
        self.log_dest_set = False
        self.auto_id_prefix_line: str | None = None  # auto_id_prefix has a non-None default
        self.handlers: dict[str, Callable[[str], None]] = {
            "listener": self._listener,
            "port": self._port,
            "bind_address": self._bind_address,
            "protocol": self._protocol,
            "socket_domain": self._socket_domain,
            "allow_anonymous": self._allow_anonymous,
            "password_file": self._password_file,
            "acl_file": self._acl_file,
            "auto_id_prefix": self._auto_id_prefix,
            "max_queued_messages": self._int_setter("max_queued_messages", 0),
            "max_queued_bytes": self._int_setter("max_queued_bytes", 0),
            "queue_qos0_messages": self._bool_setter("queue_qos0_messages"),
            "max_inflight_messages": self._int_setter("max_inflight_messages", 0, 65535),
            "max_qos": self._int_setter("max_qos", 0, 2),
            "max_inflight_bytes": self._int_setter("max_inflight_bytes", 0),
            "message_size_limit": self._int_setter("message_size_limit", 0, MQTT_MAX_PAYLOAD),
            # mosquitto refuses values under 20 bytes; the top is the largest possible packet.
            "max_packet_size": self._int_setter("max_packet_size", 20, MQTT_MAX_PACKET),
            "retain_available": self._bool_setter("retain_available"),
            "sys_interval": self._int_setter("sys_interval", 0),
            "max_connections": self._max_connections,
            "max_keepalive": self._int_setter("max_keepalive", 10, 65535),
            "persistent_client_expiration": self._persistent_client_expiration,
            "upgrade_outgoing_qos": self._bool_setter("upgrade_outgoing_qos"),
            "connection_messages": self._bool_setter("connection_messages"),
            "set_tcp_nodelay": self._bool_setter("set_tcp_nodelay"),
            "log_type": self._log_type,
            "log_dest": self._log_dest,
            "log_timestamp": self._bool_setter("log_timestamp"),
            "log_timestamp_format": self._log_timestamp_format,
            "persistence": self._bool_setter("persistence"),
            "persistence_location": self._str_setter("persistence_location"),
            "persistence_file": self._str_setter("persistence_file"),
            "autosave_interval": self._int_setter("autosave_interval", 0),
            "autosave_on_changes": self._bool_setter("autosave_on_changes"),
            "per_listener_settings": self._per_listener_settings,
            "user": self._user,
            "pid_file": self._pid_file,
            "coap_port": self._int_setter("coap_port", 1, MAX_PORT),
            "coap_enabled": self._bool_setter("coap_enabled"),
        }
        self.name = ""  # the name of the line being handled, for messages

    # ------------------------------------------------------------------ files

    def read_file(self, path: str, main: bool) -> None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"Unable to open config file {path}.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Unable to read config file {path}: {exc}.") from None
        for number, raw in enumerate(text.splitlines(), start=1):
            try:
                self.read_line(raw, path, main)
            except ConfigError as exc:
                if exc.line is None:
                    exc.path, exc.line = path, number
                raise

    def read_line(self, raw: str, path: str, main: bool) -> None:
        line = raw.strip()
        if not line or line.startswith("#"):
            return
        line = _TRAILING_COMMENT.sub("", line)
        parts = line.split(None, 1)
        name = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        self.name = name
        if name == "include_dir":
            if not main:
                raise ConfigError("include_dir is only allowed in the main configuration file.")
            self._include_dir(value, path)
            return
        handler = self.handlers.get(name)
        if handler is not None:
            if not value:
                raise ConfigError(f"Empty {name} value in configuration.")
            handler(value)
            return
        if name in UNSUPPORTED or name.startswith(UNSUPPORTED_PREFIXES):
            raise ConfigError(f"'{name}' is not supported by m2mhub yet.")
        raise ConfigError(f'Unknown configuration variable "{name}".')

    def _include_dir(self, value: str, main_path: str) -> None:
        if not value:
            raise ConfigError("Empty include_dir value in configuration.")
        directory = Path(value)
        try:
            names = [entry.name for entry in os.scandir(directory) if entry.name.endswith(".conf")]
        except OSError:
            raise ConfigError(f"Unable to open include_dir '{value}'.") from None
        main_resolved = Path(main_path).resolve()
        for name in sorted(names, key=include_order_key):
            child = directory / name
            if child.resolve() == main_resolved:
                raise ConfigError(f'include_dir "{value}" contains the main configuration file.')
            if child.is_file():
                self.read_file(str(child), main=False)

    # ------------------------------------------------------------------ value parsers

    def parse_bool(self, value: str) -> bool:
        if value == "true":
            return True
        if value == "false":
            return False
        raise ConfigError(f"Invalid {self.name} value ({value}).")

    def parse_int(self, value: str, low: int, high: int | None = None) -> int:
        if not re.fullmatch(r"[+-]?\d+", value):
            raise ConfigError(f"Invalid {self.name} value ({value}).")
        number = int(value)
        if number < low or (high is not None and number > high):
            limits = f"{low}..{high}" if high is not None else f">= {low}"
            raise ConfigError(f"Invalid {self.name} value ({value}): must be {limits}.")
        return number

    def parse_port(self, value: str) -> int:
        if not value.isdigit():
            raise ConfigError(f"Invalid port value ({value}).")
        port = int(value)
        if port < 1 or port > MAX_PORT:
            raise ConfigError(f"Invalid port value ({value}).")
        return port

    def _bool_setter(self, attr: str) -> Callable[[str], None]:
        def handle(value: str) -> None:
            setattr(self.settings, attr, self.parse_bool(value))

        return handle

    def _int_setter(self, attr: str, low: int, high: int | None = None) -> Callable[[str], None]:
        def handle(value: str) -> None:
            setattr(self.settings, attr, self.parse_int(value, low, high))

        return handle

    def _str_setter(self, attr: str) -> Callable[[str], None]:
        def handle(value: str) -> None:
            setattr(self.settings, attr, value)

        return handle

    # ------------------------------------------------------------------ listeners

    def _listener(self, value: str) -> None:
        parts = value.split()
        if len(parts) > 2:
            raise ConfigError(f"Invalid listener value ({value}): expected PORT [ADDRESS].")
        port = self.parse_port(parts[0])
        address = parts[1] if len(parts) == 2 else None
        for existing in self.settings.listeners:
            if existing.port == port and existing.bind_address == address:
                raise ConfigError(f"Duplicate listener on port {port}.")
        listener = Listener(port, address)
        self.settings.listeners.append(listener)
        self.settings.local_only = False
        self.current = listener

    def _ensure_default_listener(self) -> Listener:
        if self.default_listener is None:
            self.default_listener = Listener(1883, None, socket_domain=self.pending_socket_domain)
            self.settings.listeners.insert(0, self.default_listener)
            self.settings.local_only = False
        return self.default_listener

    def _port(self, value: str) -> None:
        port = self.parse_port(value)
        self._ensure_default_listener().port = port
        self.notices.append(
            "The 'port' option is now deprecated and will be removed in a future version. "
            "Please use 'listener' instead."
        )

    def _bind_address(self, value: str) -> None:
        if len(value.split()) != 1:
            raise ConfigError(f"Invalid bind_address value ({value}).")
        self._ensure_default_listener().bind_address = value
        self.notices.append(
            "The 'bind_address' option is now deprecated and will be removed in a future "
            "version. Please use 'listener' instead."
        )

    def _protocol(self, value: str) -> None:
        if value == "mqtt":
            return
        if value == "websockets":
            raise ConfigError("'protocol websockets' is not supported by m2mhub yet.")
        raise ConfigError(f"Invalid protocol value ({value}).")

    def _socket_domain(self, value: str) -> None:
        if value not in ("ipv4", "ipv6"):
            raise ConfigError(f'Invalid socket_domain value "{value}" in configuration.')
        # Before any listener line it is the default listener's (which local-only mode lacks).
        listener = self.current or self.default_listener
        if listener is None:
            self.pending_socket_domain = value
        else:
            listener.socket_domain = value

    def _max_connections(self, value: str) -> None:
        number = self.parse_int(value, -1)
        self.settings.max_connections = number

    # ------------------------------------------------------------------ security

    def _allow_anonymous(self, value: str) -> None:
        self.settings.allow_anonymous = self.parse_bool(value)
        self.allow_anonymous_set = True

    def _once(self, seen: object) -> None:
        """mosquitto refuses a second line of a single-valued setting (exit 3)."""
        if seen is not None:
            raise ConfigError(f"Duplicate {self.name} value in configuration.")

    def _password_file(self, value: str) -> None:
        self._once(self.settings.password_file)
        self.settings.password_file = value

    def _auto_id_prefix(self, value: str) -> None:
        self._once(self.auto_id_prefix_line)
        self.auto_id_prefix_line = value
        self.settings.auto_id_prefix = value

    def _acl_file(self, value: str) -> None:
        self._once(self.settings.acl_file)
        self.settings.acl_file = value

    def _per_listener_settings(self, value: str) -> None:
        if self.parse_bool(value):
            raise ConfigError("'per_listener_settings true' is not supported by m2mhub yet.")

    def _user(self, value: str) -> None:
        self.notices.append(
            f"Ignoring 'user {value}': m2mhub does not change user; "
            "run it as the user it should run as."
        )

    def _pid_file(self, value: str) -> None:
        self._once(self.settings.pid_file)
        self.settings.pid_file = value

    # ------------------------------------------------------------------ general

    def _persistent_client_expiration(self, value: str) -> None:
        match = re.fullmatch(r"(\d+)([hdwmy])", value)
        if match is None:
            raise ConfigError(
                f"Invalid persistent_client_expiration duration ({value}): "
                "use a number followed by h, d, w, m or y."
            )
        amount = int(match.group(1))
        if amount <= 0:
            raise ConfigError(f"Invalid persistent_client_expiration duration ({value}).")
        self.settings.persistent_client_expiration = amount * DURATION_UNITS[match.group(2)]

    # ------------------------------------------------------------------ logging

    def _log_type(self, value: str) -> None:
        if len(value.split()) != 1 or value not in LOG_TYPES:
            raise ConfigError(f"Invalid log_type value ({value}).")
        if not self.log_types_set:
            self.settings.log_types = set()
            self.log_types_set = True
        self.settings.log_types.add(value)

    def _log_dest(self, value: str) -> None:
        kind, _, arg = value.partition(" ")
        arg = arg.strip()
        if kind in ("stderr", "stdout", "none"):
            if arg:
                raise ConfigError(f"Invalid log_dest value ({value}).")
            entry = kind
        elif kind == "file":
            if not arg:
                raise ConfigError('Empty "log_dest file" value in configuration.')
            if any(dest.startswith("file ") for dest in self.settings.log_dest):
                raise ConfigError('Only a single "log_dest file" may be configured.')
            entry = f"file {arg}"
        elif kind in ("syslog", "topic", "dlt"):
            raise ConfigError(f"'log_dest {kind}' is not supported by m2mhub yet.")
        else:
            raise ConfigError(f"Invalid log_dest value ({value}).")
        if not self.log_dest_set:
            self.settings.log_dest = []
            self.log_dest_set = True
        if entry not in self.settings.log_dest:
            self.settings.log_dest.append(entry)

    def _log_timestamp_format(self, value: str) -> None:
        self.settings.log_timestamp_format = value

    # ------------------------------------------------------------------ the end

    def finish(self) -> None:
        settings = self.settings
        if settings.local_only:
            # mosquitto 2.0 allows anonymous clients in local-only mode whatever the file says.
            settings.allow_anonymous = True
        elif not self.allow_anonymous_set:
            settings.allow_anonymous = False
        defaults = BrokerSettings()
        for attr in NOT_YET_ENFORCED:
            if getattr(settings, attr) != getattr(defaults, attr):
                self.warnings.append(
                    f"Warning: '{attr}' is accepted but not acted on by m2mhub yet."
                )


def include_order_key(name: str) -> list[tuple[str, int]]:
    """mosquitto's include_dir order: alphabetical, upper case before lower of one letter."""
    return [(char.lower(), 0 if char.isupper() else 1) for char in name]


def load_config(path: str | None) -> Config:
    """Read ``path`` (a mosquitto.conf); None gives the embedded defaults (local-only mode).

    Raises :class:`ConfigError` naming the file and line of the first bad line.
    """
    parser = _Parser()
    if path is not None:
        parser.read_file(path, main=True)
    parser.finish()
    return Config(parser.settings, path, parser.notices, parser.warnings)


def parse_config_text(text: str, path: str = "<config>") -> Config:
    """Parse config text as if read from ``path`` (``include_dir`` is resolved as usual)."""
    parser = _Parser()
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            parser.read_line(raw, path, main=True)
        except ConfigError as exc:
            if exc.line is None:
                exc.path, exc.line = path, number
            raise
    parser.finish()
    return Config(parser.settings, path, parser.notices, parser.warnings)
