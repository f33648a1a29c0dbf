"""The site's middleware: the Content-Security-Policy header (Django 5.2 does not send one by
itself; Django 6 does), a path missing only its trailing slash, JSON errors under /api/, the
health check answered for any Host, requests that bypass the proxy refused, no dynamic response
cached, and each request's metrics."""

import time

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import is_valid_path
from django.views.defaults import permission_denied
from rest_framework.response import Response

from qa.operations import metrics
from qa.origin import through_proxy
from qa.urls import HEALTH_PATH
from qa.views import HealthView

API_PREFIX = "/api/"
# The health check, asked with or without its trailing slash (TrailingSlashMiddleware, which
# answers the second elsewhere, comes after HealthCheckMiddleware).
HEALTH_PATHS = frozenset({HEALTH_PATH, HEALTH_PATH.rstrip("/")})

# The detail of an error under /api/ that Django, not DRF, answered (DRF writes its own).
API_ERROR_DETAILS = {
    400: "Bad request.",
    403: "Permission denied.",
    404: "Not found.",
    500: "Internal server error.",
}


class ContentSecurityPolicyMiddleware:
    """Sends settings.SECURE_CSP on every response that has no policy of its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(
            f"{directive} {' '.join(sources)}" for directive, sources in settings.SECURE_CSP.items()
        )

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response


class TrailingSlashMiddleware:
    """Answers a path that lacks only its trailing slash as if it had it, where a redirect would
    lose the request: under /api/ for every method, elsewhere for every method but GET and HEAD.

    Django's APPEND_SLASH (CommonMiddleware, which must come after this) answers such a path with
    a 301 to the slashed one: a client that follows it turns a POST into a GET and drops the body,
    and under DEBUG Django refuses with a RuntimeError (a 500) instead. A browser's GET of a page
    still gets that redirect, so its address bar shows the page's one address.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if (
            not path.endswith("/")
            and (path.startswith(API_PREFIX) or request.method not in ("GET", "HEAD"))
            and not is_valid_path(path, getattr(request, "urlconf", None))
            and is_valid_path(f"{path}/", getattr(request, "urlconf", None))
        ):
            request.path_info = f"{path}/"
            request.path = f"{request.path}/"
        return self.get_response(request)


class MethodNotAllowedMiddleware:
    """A method the view has no handler for is answered by the view itself (405, with Allow)
    before CsrfViewMiddleware, which comes after this, refuses it with a 403: a POST to
    /api/docs/ was a 403 "CSRF verification failed" where nothing could have been posted. The
    view's methods: a class-based view's handlers, or a function view's ``allowed_methods``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "view_class", None)
        method = request.method.lower()
        if view_class is not None:
            allowed = method in view_class.http_method_names and (
                hasattr(view_class, method) or (method == "head" and hasattr(view_class, "get"))
            )
        else:
            allowed = request.method in getattr(view_func, "allowed_methods", [request.method])
        return None if allowed else view_func(request, *view_args, **view_kwargs)


class ApiErrorsAsJsonMiddleware:
    """Under /api/, an error Django answers with a page becomes a JSON {"detail": ...} like DRF's
    own errors, with the same status and headers: in every mode, DEBUG too (whose technical 404
    and 500 pages no handler setting replaces). Must come first, so that errors raised by any
    other middleware reach it as responses.

    DRF's responses are left as they are when JSON, or the browsable API's HTML page for a
    browser; in any other format (the schema view renders its errors as YAML) their data is sent
    as JSON.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if (
            response.status_code < 400
            or not f"{request.path_info}/".startswith(API_PREFIX)  # /api too
            or content_type.startswith("application/json")
            # The browsable API's page, for a browser.
            or (isinstance(response, Response) and content_type.startswith("text/html"))
        ):
            return response
        status = response.status_code
        if isinstance(response, Response) and isinstance(response.data, dict):
            # DRF's error in another renderer's format: the schema's YAML, for one.
            body = response.data
        else:
            body = {"detail": API_ERROR_DETAILS.get(status) or f"{response.reason_phrase}."}
        json_response = JsonResponse(body, status=status)
        for name, value in response.items():
            if name.lower() not in ("content-type", "content-length"):
                json_response[name] = value
        json_response.cookies = response.cookies
        return json_response


class HealthCheckMiddleware:
    """Answers GET and HEAD of the health check (with or without its slash) for any Host, or none.

    Placed before the middleware that validates Host against ALLOWED_HOSTS (CommonMiddleware,
    CSRF): a load balancer's health check names its target by IP address (``Host: 10.0.1.85``),
    and an ALB checking a Lambda function sends no Host at all. The Host check guards the links
    and redirects Django builds from Host; health's JSON has none. Every other path, and any
    other method on this one, keeps the check. (With DJANGO_HTTPS, settings exempt this path
    from the HTTPS redirect, which also reads Host.)
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.health = HealthView.as_view()

    def __call__(self, request):
        if request.path_info not in HEALTH_PATHS or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        return self.health(request).render()


def is_rust_panic(error: BaseException) -> bool:
    """Whether ``error`` is a Rust panic raised through pyo3 (tokenizers, safetensors): a
    ``pyo3_runtime.PanicException``, a BaseException like KeyboardInterrupt, so that a bare
    ``except Exception`` misses it. Each pyo3 library has its own class of that name, so it is
    told by name."""
    kind = type(error)
    return kind.__module__ == "pyo3_runtime" and kind.__name__ == "PanicException"


class RustPanicMiddleware:
    """Turns a Rust panic (is_rust_panic) out of a view into the
    RuntimeError it stands for: a bug, which Django answers as any other (a 500, JSON under
    /api/, logged), where the BaseException passed by Django's handlers to the server (a
    text/plain 500 from runserver, an invocation error on Lambda)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        except BaseException as error:
            if is_rust_panic(error):
                raise RuntimeError("A Rust library panicked.") from error
            raise


class RequestMetricsMiddleware:
    """Records each response's metrics (qa.operations.metrics: Requests, Latency, ClientErrors by
    status,
    ServerErrors). Comes first, so that it sees every response as it goes out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.request_served(response.status_code, time.perf_counter() - started)
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every response that sets no caching of its own: pages,
    answers, errors, health, the schema. Static files keep WhiteNoise's.

    CloudFront compresses only responses its cache policy lets it cache (a policy with a maximum
    TTL above 0: docs/lambda.md, "Caching and compression"); this header keeps every dynamic
    response out of its
    cache, and out of the browser's and any other shared cache (answers, and pages carrying a
    CSRF token, are one client's).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Cache-Control", "no-store")
        return response


class ProxyOnlyMiddleware:
    """With a proxy secret configured (qa.origin), refuses with a 403 every request that does
    not carry it, health checks and static files included: the site is the proxy's (CloudFront's)
    URL, and API Gateway's own must not bypass it. Comes before everything that answers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not through_proxy(request):  # answered, not raised: nothing to log but the metric
            return permission_denied(request, PermissionDenied())
        return self.get_response(request)
