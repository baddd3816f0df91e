"""Sans-IO MQTT: packets, codec, properties, reason codes and topic rules.

Nothing in this package touches sockets, asyncio or the clock.
"""
