"""Tests of the broker core (no sockets)."""
