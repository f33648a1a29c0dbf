"""Request parsers that refuse bodies over the upload limit with 413 instead of reading them.

DRF's JSON and form parsers read the whole stream, bypassing Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
"""

import io

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than the limit of {limit} bytes.")


class SizeLimitedMixin:
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge(limit)
        return super().parse(io.BytesIO(body), media_type, parser_context)


class JSONParser(SizeLimitedMixin, parsers.JSONParser):
    pass


class FormParser(SizeLimitedMixin, parsers.FormParser):
    pass
