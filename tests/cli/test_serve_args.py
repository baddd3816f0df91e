"""``m2mhub serve`` flags and the addresses they lead to, without starting anything."""

from __future__ import annotations

import pytest

from m2mhub.cli.serve import (
    ServeOptions,
    UsageError,
    apply_options,
    coap_addresses,
    loopback_hosts,
    mqtt_addresses,
    parse_args,
)
from m2mhub.config import parse_config_text


def test_defaults() -> None:
    assert parse_args([]) == ServeOptions()


def test_every_flag_and_spelling() -> None:
    options = parse_args(
        [
            "-c",
            "a.conf",
            "-p",
            "1884",
            "--port=1885",
            "-p1886",
            "-v",
            "--coap-port",
            "5684",
            "--no-coap",
        ]
    )
    assert options.config_file == "a.conf"
    assert options.ports == [1884, 1885, 1886]
    assert options.verbose
    assert options.coap_port == 5684
    assert not options.coap
    assert parse_args(["--config-file=b.conf", "--verbose"]).config_file == "b.conf"
    assert parse_args(["-cc.conf"]).config_file == "c.conf"
    assert parse_args(["--help"]).help and parse_args(["-h"]).help


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "1"] * 11, "Only 10 ports can be specified with -p."),
        (["--coap-port", "70000"], "Invalid port specified (70000)."),
        (["--coap-port"], "--coap-port argument given, but no port specified."),
        (["--daemon"], "--daemon (daemon mode) is not supported by m2mhub."),
        (["serve"], "Unknown option 'serve'."),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_args(argv)
    assert message in str(info.value)


def test_local_only_addresses_follow_p() -> None:
    config = parse_config_text("")
    hosts = loopback_hosts()
    assert hosts[0] == "127.0.0.1"
    assert mqtt_addresses(config.settings, []) == [(host, 1883) for host in hosts]
    assert mqtt_addresses(config.settings, [1884, 1885]) == [
        (host, port) for port in (1884, 1885) for host in hosts
    ]
    assert coap_addresses(config.settings) == [(host, 5683) for host in hosts]


def test_listeners_win_over_p_with_a_warning() -> None:
    config = parse_config_text("listener 1884\nlistener 1885 127.0.0.1\n")
    options = parse_args(["-p", "1999", "--coap-port", "5999"])
    warnings = apply_options(config, options)
    assert warnings == [
        "Warning: -p is ignored because the configuration defines listeners "
        "(as mosquitto 2.0 does)."
    ]
    assert mqtt_addresses(config.settings, options.ports) == [(None, 1884), ("127.0.0.1", 1885)]
    assert ("0.0.0.0", 5999) in coap_addresses(config.settings)


def test_no_coap_flag_turns_the_face_off() -> None:
    config = parse_config_text("")
    apply_options(config, parse_args(["--no-coap"]))
    assert not config.settings.coap_enabled


def test_socket_domain_picks_one_family() -> None:
    config = parse_config_text(
        "listener 1884\nsocket_domain ipv4\nlistener 1885 localhost\nsocket_domain ipv4\n"
        "listener 1886\nsocket_domain ipv6\n"
    )
    assert mqtt_addresses(config.settings, []) == [
        ("0.0.0.0", 1884),
        ("127.0.0.1", 1885),
        ("::", 1886),
    ]
