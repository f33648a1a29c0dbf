"""The API's request parsers: DRF's, with a 400 where DRF's own would fail with a 500."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """JSON nested deeper than Python's recursion limit ("[[[[..." in a small body) is a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError("JSON parse error - the document is nested too deeply.") from error
