"""m2mhub.coap: a sans-IO CoAP engine (RFC 7252, 7641, 7959, 6690).

No sockets, asyncio or clock reads in here: the UDP shell is :mod:`m2mhub.net.coap_server`.
"""

from m2mhub.coap.message import ACK, CON, NON, RST, CoapDecodeError, Message, Type, decode, encode
from m2mhub.coap.options import Code, ContentFormat

__all__ = [
    "ACK",
    "CON",
    "NON",
    "RST",
    "CoapDecodeError",
    "Code",
    "ContentFormat",
    "Message",
    "Type",
    "decode",
    "encode",
]
