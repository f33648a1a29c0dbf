"""The WSGI environ of an AWS event, put right where apig-wsgi gets it wrong.

apig-wsgi (qasite.lambda_handler) turns API Gateway (HTTP API payload 2.0, REST API payload 1.0),
ALB and function URL events into a WSGI environ. Three things in it are not what Django needs:

- **Strings.** PEP 3333 wants PATH_INFO, QUERY_STRING and header values as "bytes as str": each
  byte of the request as one character U+0000-U+00FF (Django encodes them back to bytes with
  latin-1, then decodes UTF-8). Events carry decoded Unicode (``"rawPath": "/東京"``), which
  apig-wsgi passes on as it is: Django's ``"/東京".encode("latin-1")`` then raises out of the
  handler, and ``/café`` is read as the byte 0xE9. Here every non-ASCII character is taken as
  the UTF-8 bytes a client sent; percent-escapes are kept as they were.
- **The client's address.** For REST API and ALB events apig-wsgi sets REMOTE_ADDR to the first
  X-Forwarded-For entry, which the client writes. Here it is the address AWS vouches for.
- **The path prefix.** A REST API stage (``https://…/prod/``), a custom domain's base path
  mapping or an HTTP API named stage is part of the URL the client sees, not of the site's
  paths: it goes into SCRIPT_NAME, so that the links Django builds (``{% url %}``,
  ``{% static %}``) keep it.
"""

import re
from urllib.parse import quote, unquote

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_PATH_PARAMETER = re.compile(r"\{([^{}+]+)\+?\}")


def replace_lone_surrogates(value):
    """An event (or any part of it) with every lone surrogate in its strings, keys included,
    replaced by U+FFFD, as invalid UTF-8 in a body or URL becomes U+FFFD in what Django reads.

    JSON strings may hold them ("\\ud800"), UTF-8 cannot: apig-wsgi's urlencode of a REST API or
    ALB query string, and its encoding of a body sent as text, raised UnicodeEncodeError (a
    500). A Python string from JSON holds a surrogate only alone (json joins pairs).
    """
    if isinstance(value, str):
        return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_lone_surrogates(item) for item in value]
    return value


def wsgi_str(text: str) -> str:
    """A decoded string as PEP 3333's "bytes as str": its UTF-8 bytes, one character each.

    ASCII text comes back unchanged. Lone surrogates (valid in a JSON string, not in UTF-8) are
    kept as the bytes UTF-8 would give them, which Django then reads as invalid UTF-8.
    """
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def _percent_encode_non_ascii(text: str) -> str:
    """Non-ASCII characters as UTF-8 percent-escapes; everything else (``%2F`` too) untouched."""
    return _NON_ASCII.sub(lambda match: quote(match.group(), safe="", errors="surrogatepass"), text)


def wsgi_path(path: str) -> str:
    """A path from an event (decoded, percent-encoded, or a mix) as PATH_INFO: unescaped bytes."""
    return unquote(_percent_encode_non_ascii(path), encoding="latin-1")


def event_shape(event: dict) -> str:
    """The event's shape as apig-wsgi reads it: "v2" (HTTP API payload 2.0, function URLs),
    "v1" (REST API) or "alb"."""
    context = event.get("requestContext")
    if isinstance(context, dict) and "elb" in context:
        return "alb"
    return "v2" if event.get("version") == "2.0" else "v1"


def _headers(event: dict, name: str) -> list[str]:
    """Every value of one header, from ``headers`` or ``multiValueHeaders``, in order."""
    name = name.lower()
    if event.get("multiValueHeaders"):
        return [
            value
            for key, values in event["multiValueHeaders"].items()
            if key.lower() == name
            for value in values or ()
        ]
    return [value for key, value in (event.get("headers") or {}).items() if key.lower() == name]


def client_address(event: dict) -> str:
    """The address of the client as AWS knows it, never one the client wrote; "" if none.

    HTTP API and function URLs: ``requestContext.http.sourceIp``. REST API:
    ``requestContext.identity.sourceIp``. ALB: the last X-Forwarded-For entry, the one the load
    balancer appends (its default "append" mode; a client may write any entries before it).
    An ALB health check carries no X-Forwarded-For, hence no address.
    """
    context = event.get("requestContext") or {}
    shape = event_shape(event)
    if shape == "v2":
        return (context.get("http") or {}).get("sourceIp") or ""
    if shape == "v1":
        return (context.get("identity") or {}).get("sourceIp") or ""
    entries = ",".join(_headers(event, "X-Forwarded-For")).split(",")
    return entries[-1].strip()


def _resource_path(event: dict) -> str:
    """The path the REST API resource matched names (decoded): its ``resource`` with the path
    parameters filled in, ``/{proxy+}`` and ``{"proxy": "api/answer/"}`` giving ``/api/answer/``."""
    parameters = event.get("pathParameters") or {}
    return _PATH_PARAMETER.sub(
        lambda match: parameters.get(match.group(1)) or "", event.get("resource") or ""
    )


def prefix_and_path(event: dict) -> tuple[str, str]:
    """The prefix the client's URL has before the site's paths (decoded, "" if none), and the
    site's path as the event gives it (decoded or percent-encoded).

    REST API: ``requestContext.path`` is the client's path, and the prefix is what it has before
    the site's path. That is ``path`` on the API's own URL (``/prod/api/answer/`` and
    ``/api/answer/``); on a custom domain with a base path mapping ``path`` holds the base path
    too, and the site's path is the one the matched resource names. HTTP API: a named stage (not
    ``$default``) comes first in ``rawPath``. ALB events and function URLs have no prefix.
    """
    context = event.get("requestContext") or {}
    if event_shape(event) == "v2":
        path = event.get("rawPath") or "/"
        stage = context.get("stage") or "$default"
        prefix = f"/{stage}"
        if stage != "$default" and (path == prefix or path.startswith(prefix + "/")):
            return prefix, path[len(prefix) :] or "/"
        return "", path
    path = event.get("path") or "/"
    seen = unquote(context.get("path") or "") if event_shape(event) == "v1" else ""
    for site in (unquote(path), _resource_path(event)):
        if site.startswith("/") and seen != site and seen.endswith(site):
            prefix = seen[: -len(site)].rstrip("/")
        elif site == "/" and seen.startswith("/"):  # the prefix's root, asked without its slash
            prefix = seen.rstrip("/")
        else:
            continue
        if path == prefix or path.startswith(prefix + "/"):  # a base path mapping's
            return prefix, path[len(prefix) :] or "/"
        return prefix, path
    return "", path


def correct_environ(environ: dict) -> None:
    """Put right, in place, what apig-wsgi built from ``environ["apig_wsgi.full_event"]``."""
    event = environ["apig_wsgi.full_event"]
    prefix, path = prefix_and_path(event)
    environ["SCRIPT_NAME"] = wsgi_str(prefix)
    environ["PATH_INFO"] = wsgi_path(path)
    environ["QUERY_STRING"] = _percent_encode_non_ascii(environ.get("QUERY_STRING", ""))
    for key, value in environ.items():
        if (key.startswith("HTTP_") or key in ("CONTENT_TYPE", "SERVER_NAME")) and isinstance(
            value, str
        ):
            environ[key] = wsgi_str(value)
    environ["REMOTE_ADDR"] = client_address(event)
    environ["wsgi.url_scheme"] = "https" if environ.get("wsgi.url_scheme") == "https" else "http"


def with_corrected_environ(application):
    """A WSGI application that corrects apig-wsgi's environ, then calls ``application``."""

    def corrected(environ, start_response):
        correct_environ(environ)
        return application(environ, start_response)

    return corrected
