"""m2mhub.coap: a sans-IO CoAP engine (RFC 7252, 7641, 7959, 6690).

No sockets, asyncio or clock reads in here: the UDP shell is :mod:`m2mhub.net.coap_server`.
The names below are the user-facing API (close to aiocoap's)::

    from m2mhub.coap import Resource, ObservableResource, Site, Message, Code
"""

from m2mhub.coap.endpoint import ClientExchange, CoapConfig, Endpoint
from m2mhub.coap.message import ACK, CON, NON, RST, CoapDecodeError, Message, Type, decode, encode
from m2mhub.coap.options import Code, ContentFormat
from m2mhub.coap.resource import (
    BadRequest,
    CoapError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    ObservablePrefixResource,
    ObservableResource,
    PrefixResource,
    Resource,
    Site,
    UnsupportedContentFormat,
)

CONTENT = Code.CONTENT
CHANGED = Code.CHANGED
CREATED = Code.CREATED
DELETED = Code.DELETED
GET = Code.GET
PUT = Code.PUT
POST = Code.POST
DELETE = Code.DELETE

__all__ = [
    "ACK",
    "CHANGED",
    "CON",
    "CONTENT",
    "CREATED",
    "DELETE",
    "DELETED",
    "GET",
    "NON",
    "POST",
    "PUT",
    "RST",
    "BadRequest",
    "ClientExchange",
    "CoapConfig",
    "CoapDecodeError",
    "CoapError",
    "Code",
    "ContentFormat",
    "Endpoint",
    "Forbidden",
    "Message",
    "MethodNotAllowed",
    "NotFound",
    "ObservablePrefixResource",
    "ObservableResource",
    "PrefixResource",
    "Resource",
    "Site",
    "Type",
    "UnsupportedContentFormat",
    "decode",
    "encode",
]
