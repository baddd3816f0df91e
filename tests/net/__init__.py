"""Tests of the asyncio network shells over real sockets."""
