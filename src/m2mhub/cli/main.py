"""The ``m2mhub`` command: dispatches ``m2mhub <command> ...`` to ``m2mhub.cli.<command>``.

Each command module exposes ``run(argv: list[str]) -> int`` and parses its own flags, because
the flags follow other tools (mosquitto, mosquitto_pub/sub, coap-client) where ``-h`` is not help.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("m2mhub.cli.serve", "run the hub: MQTT broker (and CoAP server)"),
    "pub": ("m2mhub.cli.pub", "publish MQTT messages (mosquitto_pub's flags)"),
    "sub": ("m2mhub.cli.sub", "subscribe to MQTT topics (mosquitto_sub's flags)"),
    "rr": ("m2mhub.cli.rr", "MQTT request/response: publish, print the reply (mosquitto_rr's)"),
    "coap": ("m2mhub.cli.coap", "CoAP client (libcoap coap-client's flags)"),
    "trace": ("m2mhub.cli.trace", "transparent proxy that prints every packet"),
    "lab": ("m2mhub.cli.lab", "the protocol experiments, as tables and reports"),
    "bench": ("m2mhub.cli.bench", "side-by-side load benchmarks"),
    "passwd": ("m2mhub.cli.passwd", "manage password files (mosquitto_passwd's flags)"),
}


def usage() -> str:
    lines = ["usage: m2mhub <command> [options]   (m2mhub <command> --help for its options)", ""]
    for name, (module, text) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            lines.append(f"  {name:<7} {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``m2mhub`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("--help", "help", "-?"):
        print(usage())
        return 0
    if args[0] == "--version":
        from m2mhub import __version__

        print(f"m2mhub {__version__}")
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None or importlib.util.find_spec(entry[0]) is None:
        print(f"m2mhub: unknown command '{args[0]}'\n\n{usage()}", file=sys.stderr)
        return 1
    module = importlib.import_module(entry[0])
    result: int = module.run(args[1:])
    return result


if __name__ == "__main__":
    sys.exit(main())
