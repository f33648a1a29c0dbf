"""Static files' URLs under the path prefix of the request being served."""

from django.contrib.staticfiles.storage import StaticFilesStorage
from django.urls import get_script_prefix


class ScriptPrefixedStaticFilesStorage(StaticFilesStorage):
    """``{% static %}`` URLs that follow the request's path prefix (SCRIPT_NAME, or
    FORCE_SCRIPT_NAME): ``/prod/static/qa/site.css`` on a REST API stage URL.

    Django prefixes a relative STATIC_URL with SCRIPT_NAME only when the setting is first read,
    and keeps that for the life of the process: on Lambda that is at import, before any request,
    so the prefix never appeared; a process serving several prefixes (a stage URL and a custom
    domain) would get the first one everywhere. So STATIC_URL is the absolute ``/static/`` (which
    Django leaves alone, and WhiteNoise matches against the path without its prefix) and the
    prefix is added here, per request.
    """

    def url(self, name):
        return get_script_prefix().rstrip("/") + super().url(name)
