"""Rate limiting of questions per client address: the API and the form share one budget, since
both run the model. Reading the page or the API's usage is never limited."""

import functools
import hmac
import ipaddress
import math

from django.conf import settings
from django.shortcuts import render
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _through_trusted_proxy(request) -> bool:
    """Whether the request carries the proxy's secret (always true when none is configured)."""
    secret = settings.QA_PROXY_SECRET
    sent = request.headers.get("X-Origin-Verify", "")
    return not secret or hmac.compare_digest(sent.encode(), secret.encode())


def client_ip(request) -> str:
    """Who the request counts against: an IPv4 address, or an IPv6 /64 (one client usually holds
    a whole /64, so counting single IPv6 addresses would let it step around the limit).

    The address is REMOTE_ADDR, unless settings.QA_CLIENT_IP_HEADER names a header in which the
    proxy in front gives the client's "address:port" (CloudFront-Viewer-Address) and the request
    came through that proxy (QA_PROXY_SECRET). Never X-Forwarded-For: clients write its first
    entries, and how many entries each hop appends is not something to bet a rate limit on.
    """
    address = None
    header = settings.QA_CLIENT_IP_HEADER
    if header and _through_trusted_proxy(request):
        host, _, _port = request.headers.get(header, "").rpartition(":")
        address = _ip(host.strip("[]"))
    address = address or _ip(request.META.get("REMOTE_ADDR", ""))
    if address is None:
        return request.META.get("REMOTE_ADDR", "")
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class QuestionRateThrottle(SimpleRateThrottle):
    """settings.QA_THROTTLE_RATE questions per client address (None: unlimited)."""

    scope = "questions"

    def get_rate(self):
        return settings.QA_THROTTLE_RATE

    def allow_request(self, request, view):
        return request.method in SAFE_METHODS or super().allow_request(request, view)

    def get_ident(self, request):
        return client_ip(request)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def throttle_questions(view):
    """QuestionRateThrottle for a plain Django view (an APIView lists it in throttle_classes):
    over the rate, a 429 page that says how long to wait, with Retry-After."""

    @functools.wraps(view)
    def throttled_view(request, *args, **kwargs):
        throttle = QuestionRateThrottle()
        if throttle.allow_request(request, None):
            return view(request, *args, **kwargs)
        wait = math.ceil(throttle.wait())
        response = render(request, "429.html", {"wait": wait}, status=429)
        response["Retry-After"] = str(wait)
        return response

    return throttled_view
