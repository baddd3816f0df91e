#!/usr/bin/env python3
"""Run the benchmark scenarios side by side; the same as ``m2mhub bench``.

    python benchmarks/run.py mqtt --brokers mosquitto,m2mhub --duration 10
    python benchmarks/run.py coap

With no arguments it runs the MQTT group with the defaults. See docs/bench.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from m2mhub.cli.bench import run
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from m2mhub.cli.bench import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:] or ["mqtt"], prog="python benchmarks/run.py"))
