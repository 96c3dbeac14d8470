"""Request parsers: DRF's, hardened against hostile bodies.

DRF's parsers read the request stream themselves, so Django's
`DATA_UPLOAD_MAX_MEMORY_SIZE` (enforced by `request.body`/`request.POST`) would never apply
to a JSON or form body: these read at most that many bytes and answer 413 beyond it.
"""

import io

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self, limit: int):
        super().__init__(f"request body larger than {limit} bytes")


def read_limited(stream) -> io.BytesIO:
    """The whole body, or 413 once it passes DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise RequestTooLarge(limit)
    return io.BytesIO(body)


class JSONParser(parsers.JSONParser):
    """Size-limited; a body nested deeper than Python's recursion limit (`[[[[...`, a few
    hundred kilobytes) is a 400 instead of an uncaught RecursionError (500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_limited(stream)
        try:
            return super().parse(body, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return super().parse(read_limited(stream), media_type, parser_context)
