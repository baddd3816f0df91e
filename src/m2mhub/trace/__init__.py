"""Packet tracing: one formatter for MQTT packets and CoAP messages, stream framing for the
tracer, a pcap writer, and the asyncio proxy behind ``m2mhub trace``.

The decoding and formatting modules are sans-IO; only :mod:`m2mhub.trace.proxy` touches sockets.
"""
