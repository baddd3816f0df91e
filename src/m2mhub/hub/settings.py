"""Broker settings: what a ``mosquitto.conf`` (or the command line) can change.

The config parser (``m2mhub.config``) fills one of these; the broker core only reads it.
Defaults are mosquitto 2.0's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Listener:
    """One ``listener PORT [BIND_ADDRESS]`` line (protocol ``mqtt``; later ``websockets``)."""

    port: int
    bind_address: str | None = None  # None: all interfaces (or loopback in local-only mode)
    protocol: str = "mqtt"
    socket_domain: str | None = None  # "ipv4" or "ipv6": only that family; None: both


@dataclass(slots=True)
class BrokerSettings:
    listeners: list[Listener] = field(default_factory=list)
    # No listener configured at all means mosquitto 2.0's local-only mode: port 1883 on the
    # loopback interfaces, anonymous clients allowed.
    local_only: bool = True
    allow_anonymous: bool = True
    password_file: str | None = None
    acl_file: str | None = None  # read by the shell (m2mhub.auth.acl), not by the core
    max_queued_messages: int = 1000
    max_queued_bytes: int = 0  # 0: no limit
    queue_qos0_messages: bool = False
    max_inflight_messages: int = 20
    max_inflight_bytes: int = 0
    message_size_limit: int = 0  # 0: the protocol maximum (268,435,455 bytes)
    # Largest whole packet a client may send (advertised to 5.0 clients in CONNACK); 0: none.
    max_packet_size: int = 0
    retain_available: bool = True
    max_qos: int = 2  # highest QoS clients may use (5.0 clients are told in CONNACK)
    sys_interval: int = 10  # seconds; 0 disables $SYS
    max_connections: int = -1  # -1: unlimited
    max_keepalive: int = 65535
    persistent_client_expiration: int | None = None  # seconds; None: never
    upgrade_outgoing_qos: bool = False
    connection_messages: bool = True
    # mosquitto defaults to Nagle on; we default to TCP_NODELAY, which keeps QoS round trips
    # free of delayed-ACK stalls. `set_tcp_nodelay false` turns Nagle back on.
    set_tcp_nodelay: bool = True
    log_types: set[str] = field(
        default_factory=lambda: {"error", "warning", "notice", "information"}
    )
    log_timestamp: bool = True
    log_timestamp_format: str | None = None  # strftime format; None: Unix seconds like mosquitto
    log_dest: list[str] = field(default_factory=lambda: ["stderr"])
    persistence: bool = False
    persistence_location: str = ""
    persistence_file: str = "m2mhub.db"
    autosave_interval: int = 1800  # seconds, or changes with autosave_on_changes; 0: at exit
    autosave_on_changes: bool = False
    # CoAP face of the hub.
    coap_enabled: bool = True
    coap_port: int = 5683
    coap_bind_addresses: list[str] = field(default_factory=list)
    # Prefix of the client ids the broker assigns to clients that send an empty one.
    auto_id_prefix: str = "auto-"
    # Process: where `m2mhub serve` writes its process id (None: nowhere).
    pid_file: str | None = None
