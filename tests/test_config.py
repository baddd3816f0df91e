"""The mosquitto.conf parser: every supported line, every error with FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2mhub.config import (
    UNSUPPORTED,
    Config,
    ConfigError,
    include_order_key,
    load_config,
    parse_config_text,
)
from m2mhub.hub.settings import BrokerSettings, Listener


def parse(text: str) -> Config:
    return parse_config_text(text, "test.conf")


def settings(text: str) -> BrokerSettings:
    return parse(text).settings


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


# ---------------------------------------------------------------------- file format


def test_no_config_is_local_only_with_anonymous_allowed() -> None:
    config = load_config(None)
    assert config.path is None
    assert config.settings.local_only
    assert config.settings.listeners == []
    assert config.settings.allow_anonymous


def test_comments_blank_lines_and_whitespace() -> None:
    result = settings(
        "# a comment\n\n   \n  # indented comment\n"
        "listener 1884   # trailing comment\n"
        "  max_queued_messages 5  \n"
        "max_inflight_messages\t7\n"
    )
    assert result.listeners == [Listener(1884, None)]
    assert result.max_queued_messages == 5
    assert result.max_inflight_messages == 7


def test_unknown_line_names_file_line_and_variable() -> None:
    exc = error("listener 1884\n\nfoo bar\n")
    assert (exc.path, exc.line) == ("test.conf", 3)
    assert str(exc) == 'test.conf:3: Unknown configuration variable "foo".'


@pytest.mark.parametrize(
    "line",
    [
        "cafile /etc/ca.pem",
        "certfile /etc/cert.pem",
        "keyfile /etc/key.pem",
        "connection bridge-01",
        "address 10.0.0.1:1883",
        "topic # both 0",
        "auth_plugin /usr/lib/plugin.so",
        "auth_opt_db mydb",
        "plugin /usr/lib/dynamic-security.so",
        "plugin_opt_config_file dynsec.json",
        "psk_file /etc/psk",
        "mount_point tenant/",
        "max_topic_alias 5",
    ],
)
def test_unsupported_lines_are_named_never_ignored(line: str) -> None:
    exc = error(f"listener 1884\n{line}\n")
    name = line.split()[0]
    assert str(exc) == f"test.conf:2: '{name}' is not supported by m2mhub yet."


def test_unsupported_list_holds_no_supported_name() -> None:
    config_names = {"listener", "port", "password_file", "allow_anonymous", "log_dest"}
    assert not config_names & UNSUPPORTED


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("protocol websockets", "'protocol websockets' is not supported by m2mhub yet."),
        ("per_listener_settings true", "'per_listener_settings true' is not supported"),
        ("log_dest syslog", "'log_dest syslog' is not supported by m2mhub yet."),
        ("log_dest topic", "'log_dest topic' is not supported by m2mhub yet."),
    ],
)
def test_unsupported_values_are_named(line: str, message: str) -> None:
    assert message in str(error(f"{line}\n"))


def test_empty_value_is_an_error() -> None:
    assert str(error("listener 1884\nallow_anonymous\n")) == (
        "test.conf:2: Empty allow_anonymous value in configuration."
    )


# ---------------------------------------------------------------------- listeners and modes


def test_listener_with_and_without_address() -> None:
    result = settings("listener 1884\nlistener 1885 127.0.0.1\n")
    assert result.listeners == [Listener(1884, None), Listener(1885, "127.0.0.1")]
    assert not result.local_only


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("listener 0", "Invalid port value (0)."),
        ("listener 70000", "Invalid port value (70000)."),
        ("listener abc", "Invalid port value (abc)."),
        ("listener 1884 127.0.0.1 extra", "expected PORT [ADDRESS]"),
        ("port -1", "Invalid port value (-1)."),
    ],
)
def test_bad_listener_lines(line: str, message: str) -> None:
    exc = error(f"# first\n{line}\n")
    assert exc.line == 2
    assert message in str(exc)


def test_duplicate_listener_is_an_error() -> None:
    assert "Duplicate listener on port 1884" in str(error("listener 1884\nlistener 1884\n"))


def test_acl_file_is_kept_for_the_hub_and_may_appear_once() -> None:
    assert settings("listener 1884\nacl_file /etc/m2mhub/acl\n").acl_file == "/etc/m2mhub/acl"
    assert settings("listener 1884\n").acl_file is None
    exc = error("acl_file /a\nacl_file /b\n")
    assert str(exc) == "test.conf:2: Duplicate acl_file value in configuration."  # as mosquitto


@pytest.mark.parametrize("name", ["password_file", "acl_file", "auto_id_prefix", "pid_file"])
def test_single_valued_lines_may_appear_once(name: str) -> None:
    # mosquitto 2.0.11 refuses the second line even when it repeats the first value.
    exc = error(f"listener 1884\n{name} /a\n{name} /a\n")
    assert str(exc) == f"test.conf:3: Duplicate {name} value in configuration."


def test_password_file_is_kept_for_the_hub() -> None:
    assert settings("listener 1884\npassword_file /p\n").password_file == "/p"


def test_once_a_listener_exists_anonymous_defaults_to_false() -> None:
    assert not settings("listener 1884\n").allow_anonymous
    assert settings("listener 1884\nallow_anonymous true\n").allow_anonymous


def test_local_only_forces_anonymous_like_mosquitto() -> None:
    # mosquitto 2.0.11 lets anonymous clients in on a config without listeners even when it
    # says allow_anonymous false: local-only mode sets it.
    result = settings("allow_anonymous false\nmax_queued_messages 10\n")
    assert result.local_only
    assert result.allow_anonymous


def test_port_and_bind_address_make_the_default_listener() -> None:
    config = parse("port 1999\nbind_address 127.0.0.1\n")
    assert config.settings.listeners == [Listener(1999, "127.0.0.1")]
    assert not config.settings.local_only
    assert not config.settings.allow_anonymous
    assert any("'port' option is now deprecated" in text for text in config.notices)
    assert any("'bind_address' option is now deprecated" in text for text in config.notices)


def test_bind_address_alone_uses_port_1883() -> None:
    assert settings("bind_address 127.0.0.1\n").listeners == [Listener(1883, "127.0.0.1")]


def test_socket_domain_applies_to_the_listener_before_it() -> None:
    result = settings("listener 1884\nsocket_domain ipv4\nlistener 1885\nsocket_domain ipv6\n")
    assert [listener.socket_domain for listener in result.listeners] == ["ipv4", "ipv6"]
    # Before any listener line it belongs to the default listener, when there is one.
    assert settings("socket_domain ipv6\nport 1999\n").listeners == [
        Listener(1999, None, socket_domain="ipv6")
    ]
    assert settings("socket_domain ipv4\n").local_only
    assert 'Invalid socket_domain value "ipv5"' in str(error("listener 1884\nsocket_domain ipv5\n"))


def test_protocol_mqtt_is_accepted() -> None:
    assert settings("listener 1884\nprotocol mqtt\n").listeners[0].protocol == "mqtt"


def test_per_listener_settings_false_is_accepted() -> None:
    assert settings("per_listener_settings false\n").local_only


# ---------------------------------------------------------------------- values

BOOLEANS = [
    "allow_anonymous",
    "queue_qos0_messages",
    "retain_available",
    "upgrade_outgoing_qos",
    "connection_messages",
    "log_timestamp",
    "persistence",
    "coap_enabled",
]


@pytest.mark.parametrize("name", BOOLEANS)
def test_booleans(name: str) -> None:
    for text, expected in (("true", True), ("false", False)):
        result = settings(f"listener 1884\n{name} {text}\n")
        assert getattr(result, name) is expected
    assert str(error(f"{name} yes\n")) == f"test.conf:1: Invalid {name} value (yes)."
    assert str(error(f"{name} True\n")) == f"test.conf:1: Invalid {name} value (True)."


INTEGERS = [
    # name, a good value, a value below the range, a value above it (None: no maximum)
    ("max_queued_messages", 10, -1, None),
    ("max_queued_bytes", 4096, -1, None),
    ("max_inflight_messages", 1, -1, 65536),
    ("max_inflight_bytes", 100, -1, None),
    ("message_size_limit", 1024, -1, 268_435_456),
    ("max_packet_size", 20, 19, 268_435_461),  # mosquitto: "Setting below 20 bytes is forbidden"
    ("sys_interval", 0, -1, None),
    ("max_connections", 5, -2, None),
    ("max_keepalive", 60, 9, 65536),
    ("autosave_interval", 60, -1, None),
    ("coap_port", 5684, 0, 65536),
]


@pytest.mark.parametrize(("name", "good", "low", "high"), INTEGERS)
def test_integers(name: str, good: int, low: int, high: int | None) -> None:
    assert getattr(settings(f"{name} {good}\n"), name) == good
    assert f"Invalid {name} value ({low})" in str(error(f"{name} {low}\n"))
    if high is not None:
        assert f"Invalid {name} value ({high})" in str(error(f"{name} {high}\n"))
    assert str(error(f"{name} many\n")) == f"test.conf:1: Invalid {name} value (many)."
    assert f"Invalid {name} value (1 2)" in str(error(f"{name} 1 2\n"))


def test_max_connections_unlimited() -> None:
    assert settings("max_connections -1\n").max_connections == -1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("2d", 172_800), ("3w", 1_814_400), ("4m", 10_368_000), ("5y", 157_680_000)],
)
def test_persistent_client_expiration(text: str, seconds: int) -> None:
    assert settings(f"persistent_client_expiration {text}\n").persistent_client_expiration == (
        seconds
    )


@pytest.mark.parametrize("text", ["10", "1s", "h", "2 d", "0d", "-1d"])
def test_bad_persistent_client_expiration(text: str) -> None:
    assert "Invalid persistent_client_expiration duration" in str(
        error(f"persistent_client_expiration {text}\n")
    )


def test_password_file_and_paths() -> None:
    result = settings(
        "password_file /etc/m2mhub/passwd\n"
        "persistence_location /var/lib/m2mhub/\n"
        "persistence_file hub.db\n"
        "pid_file /run/m2mhub.pid\n"
    )
    assert result.password_file == "/etc/m2mhub/passwd"
    assert result.persistence_location == "/var/lib/m2mhub/"
    assert result.persistence_file == "hub.db"
    assert result.pid_file == "/run/m2mhub.pid"


def test_auto_id_prefix() -> None:
    assert settings("").auto_id_prefix == "auto-"
    assert settings("auto_id_prefix lab-\n").auto_id_prefix == "lab-"


def test_user_is_ignored_with_a_notice() -> None:
    config = parse("user mosquitto\n")
    assert any("Ignoring 'user mosquitto'" in text for text in config.notices)


def test_settings_the_broker_acts_on_do_not_warn() -> None:
    config = parse("persistence true\nmax_inflight_bytes 1000\nupgrade_outgoing_qos true\n")
    assert not any("max_inflight_bytes" in text for text in config.warnings)  # enforced now
    assert not any("persistence" in text for text in config.warnings)  # enforced now
    assert not any("upgrade_outgoing_qos" in text for text in config.warnings)


def test_persistence_lines() -> None:
    s = settings(
        "persistence true\npersistence_location /var/lib/m2mhub/\npersistence_file hub.db\n"
        "autosave_interval 60\nautosave_on_changes true\n"
    )
    assert (s.persistence, s.persistence_location, s.persistence_file) == (
        True,
        "/var/lib/m2mhub/",
        "hub.db",
    )
    assert (s.autosave_interval, s.autosave_on_changes) == (60, True)
    assert (settings("").autosave_interval, settings("").autosave_on_changes) == (1800, False)


# ---------------------------------------------------------------------- logging


def test_log_type_replaces_the_defaults_and_accumulates() -> None:
    assert settings("").log_types == {"error", "warning", "notice", "information"}
    assert settings("log_type error\nlog_type subscribe\n").log_types == {"error", "subscribe"}
    assert settings("log_type all\n").log_types == {"all"}
    assert "Invalid log_type value (loud)" in str(error("log_type loud\n"))


def test_log_dest() -> None:
    assert settings("").log_dest == ["stderr"]
    assert settings("log_dest stdout\n").log_dest == ["stdout"]
    assert settings("log_dest none\n").log_dest == ["none"]
    assert settings("log_dest file /tmp/my hub.log\nlog_dest stderr\n").log_dest == [
        "file /tmp/my hub.log",
        "stderr",
    ]
    assert "Invalid log_dest value (pigeon)" in str(error("log_dest pigeon\n"))
    assert 'Empty "log_dest file" value' in str(error("log_dest file\n"))
    assert "Only a single" in str(error("log_dest file /tmp/a\nlog_dest file /tmp/b\n"))


def test_log_timestamp_format_keeps_spaces() -> None:
    assert settings("log_timestamp_format %Y-%m-%d %H:%M:%S\n").log_timestamp_format == (
        "%Y-%m-%d %H:%M:%S"
    )


# ---------------------------------------------------------------------- files


def test_load_config_reports_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "m.conf"
    conf.write_text("listener 1884\nallow_anonymous maybe\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert str(info.value) == f"{conf}:2: Invalid allow_anonymous value (maybe)."


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"Unable to open config file /nonexistent\.conf"):
        load_config("/nonexistent.conf")


def test_include_dir_order_and_errors_name_the_included_file(tmp_path: Path) -> None:
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    for name, port in [
        ("b.conf", 6),
        ("A.conf", 3),
        ("01.conf", 2),
        ("a.conf", 4),
        ("B.conf", 5),
        ("00.conf", 1),
    ]:
        (conf_d / name).write_text(f"listener {2000 + port}\n")
    (conf_d / "ignored.txt").write_text("this is not a config line\n")
    main = tmp_path / "main.conf"
    main.write_text(f"max_queued_messages 7\ninclude_dir {conf_d}\n")
    result = load_config(str(main)).settings
    assert [listener.port for listener in result.listeners] == [2001, 2002, 2003, 2004, 2005, 2006]
    assert result.max_queued_messages == 7

    (conf_d / "c.conf").write_text("# ok\nbogus 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(main))
    assert str(info.value) == f'{conf_d / "c.conf"}:2: Unknown configuration variable "bogus".'


def test_include_dir_only_in_the_main_file(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "x.conf").write_text(f"include_dir {inner}\n")
    main = tmp_path / "main.conf"
    main.write_text(f"include_dir {conf_d}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(main))
    assert info.value.path == str(conf_d / "x.conf")
    assert "only allowed in the main configuration file" in str(info.value)


def test_include_dir_missing(tmp_path: Path) -> None:
    main = tmp_path / "main.conf"
    main.write_text(f"include_dir {tmp_path / 'nope'}\n")
    with pytest.raises(ConfigError, match=r"main.conf:1: Unable to open include_dir"):
        load_config(str(main))


def test_include_dir_holding_the_main_file(tmp_path: Path) -> None:
    main = tmp_path / "main.conf"
    main.write_text(f"include_dir {tmp_path}\n")
    with pytest.raises(ConfigError, match="contains the main configuration file"):
        load_config(str(main))


def test_include_order_key_is_mosquittos() -> None:
    names = ["b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"]
    assert sorted(names, key=include_order_key) == [
        "00.conf",
        "01.conf",
        "A.conf",
        "a.conf",
        "B.conf",
        "b.conf",
    ]
