"""m2mhub: an MQTT broker and CoAP server sharing one topic space, with the tools around them."""

__version__ = "0.1.0"
