"""``/async?N``: libcoap's example resource for separate responses.

It answers ``done`` after N seconds (default 1, at most 10), so the server sends an empty ACK
first and the response later in its own message: the lab's "separate response" experiment
works against ``m2mhub serve`` as it does against libcoap's ``coap-server``.
"""

from __future__ import annotations

import asyncio

from m2mhub.coap.message import Message
from m2mhub.coap.options import ContentFormat
from m2mhub.coap.resource import BadRequest, Resource

MAX_DELAY = 10.0


class DelayedResource(Resource):
    """Answers GET after the number of seconds given as the query (``/async?2``)."""

    rt = "separate"
    ct = ContentFormat.TEXT_PLAIN
    title = "Separate response after N seconds"

    async def render_get(self, request: Message) -> Message:
        query = request.uri_query()
        try:
            delay = float(query[0]) if query else 1.0
        except ValueError:
            raise BadRequest("the query is the delay in seconds, e.g. /async?2") from None
        await asyncio.sleep(min(max(delay, 0.0), MAX_DELAY))
        return Message(payload=b"done", content_format=ContentFormat.TEXT_PLAIN)
