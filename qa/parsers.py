"""The API's request parsers, and how one is chosen for a request: DRF's, with a 400 where DRF's
own would fail with a 500, and a 415 that names the header to send where DRF's would misread a
JSON body, or form data in a charset other than UTF-8, and a 400 for form data that is not
UTF-8 text."""

import codecs
import json
import urllib.parse

from rest_framework import negotiation, parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType


class JSONParser(parsers.JSONParser):
    """JSON nested deeper than Python's recursion limit ("[[[[..." in a small body) is a 400.

    JSON is UTF-8 whatever charset the Content-Type declares (RFC 8259, section 8.1: JSON over a
    network is UTF-8, and application/json defines no charset parameter). DRF decodes with the
    declared one, so a UTF-8 body labelled "charset=ISO-8859-1" (some clients' default) was read
    as other text than was sent, and the answers' offsets indexed it; now it reads as sent, and a
    body that is not UTF-8 is a 400 that says which byte is wrong.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = {**(parser_context or {}), "encoding": "utf-8"}
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError("JSON parse error - the document is nested too deeply.") from error


def is_json_document(body: bytes) -> bool:
    """Whether a body is a JSON object or list (UTF-8, -16 or -32, as json.loads detects)."""
    try:
        return isinstance(json.loads(body), (dict, list))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False


class MislabelledJSON(UnsupportedMediaType):
    """A 415 for a JSON body sent with another Content-Type, or none. (Here, not in
    qa.exceptions: DRF's settings import this module while rest_framework.views loads.)"""

    def __init__(self, media_type: str):
        said = f'its Content-Type is "{media_type}"' if media_type else "it has no Content-Type"
        super().__init__(
            media_type,
            f'The body is JSON, but {said}: send it with "Content-Type: application/json".',
        )


class FormNotUTF8(UnsupportedMediaType):
    """A 415 for form data declared in a charset other than UTF-8, which Django's own form
    parsing refuses too (the page's 400): DRF decoded it with that charset, and a UTF-16 body
    came back echoed as one garbled "Unknown field." """

    def __init__(self, media_type: str, charset: str):
        super().__init__(
            media_type,
            f'Form data is read as UTF-8, but its Content-Type says "charset={charset}": send it '
            'encoded as UTF-8 (charset=utf-8, or none), or send JSON with "Content-Type: '
            'application/json".',
        )


def form_not_utf8(body: bytes) -> str | None:
    """Why an application/x-www-form-urlencoded ``body`` is not UTF-8 text once its %-escapes
    are decoded (None if it is). Django and DRF decode form data with replacement characters,
    so ``context=K%FFt`` would be answered as "K\ufffdt": a text other than the one sent, whose
    offsets would index something else."""
    try:
        urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError as error:
        return (
            f"Form data must be UTF-8 text: byte 0x{error.object[error.start]:02x} (once "
            "%-decoded) is not; send the question and context encoded as UTF-8."
        )
    return None


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's choice of parser by Content-Type, except for a JSON object or list sent under another
    type (form data's, which `curl -d` sends; text/plain; none at all...): a 415 that says to send
    Content-Type: application/json. DRF would read it as a form whose one field is named after
    the whole body ("Unknown field."), or refuse the type without saying what the body is."""

    def select_parser(self, request, parsers_available):
        parser = super().select_parser(request, parsers_available)
        if not isinstance(parser, parsers.JSONParser) and is_json_document(request.body):
            raise MislabelledJSON(request.content_type)
        charset = request.encoding  # the declared charset, when Python knows it
        if (
            isinstance(parser, (parsers.FormParser, parsers.MultiPartParser))
            and charset
            and codecs.lookup(charset).name != "utf-8"
        ):
            raise FormNotUTF8(request.content_type, charset)
        if isinstance(parser, parsers.FormParser) and (why := form_not_utf8(request.body)):
            raise ParseError(why)
        return parser
