"""Rate limiting of questions per client address: the API and the form share one budget, since
both run the model. Reading the page or the API's usage is never limited.

Every POST costs one question when it arrives (before its body is even read); a view that learns
it was sent more (a batch of N) makes it cost N with ``charge_questions(request, N)``.
"""

import functools
import ipaddress
import math

from django.conf import settings
from django.shortcuts import render
from rest_framework.exceptions import Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from qa.origin import through_proxy


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(request) -> str:
    """Who the request counts against: an IPv4 address, or an IPv6 /64 (one client usually holds
    a whole /64, so counting single IPv6 addresses would let it step around the limit).

    The address is REMOTE_ADDR, unless settings.QA_CLIENT_IP_HEADER names a header in which the
    proxy in front gives the client's "address:port" (CloudFront-Viewer-Address) and the request
    came through that proxy (qa.origin: its secret; qasite.middleware refuses the others first).
    Never X-Forwarded-For: clients write its first entries, and how many entries each hop
    appends is not something to bet a rate limit on.
    """
    address = None
    header = settings.QA_CLIENT_IP_HEADER
    if header and through_proxy(request):
        host, _, _port = request.headers.get(header, "").rpartition(":")
        address = _ip(host.strip("[]"))
    address = address or _ip(request.META.get("REMOTE_ADDR", ""))
    if address is None:
        return request.META.get("REMOTE_ADDR", "")
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class QuestionRateThrottle(SimpleRateThrottle):
    """settings.QA_THROTTLE_RATE questions per client address (None: unlimited), over a sliding
    window (DRF's: one timestamp per question, newest first, in the default cache)."""

    scope = "questions"

    def get_rate(self):
        return settings.QA_THROTTLE_RATE

    def allow_request(self, request, view):
        """Reading is free; a POST spends one question (see ``charge_questions`` for more)."""
        if request.method in SAFE_METHODS:
            return True
        if not self.spend(request, 1):
            return False
        request.questions_charged = 1
        return True

    def spend(self, request, count: int) -> bool:
        """Take ``count`` questions from the client's budget if they all fit in it now.

        Returns False, and takes nothing, when they do not; ``wait()`` then says for how long.
        """
        self.count = count
        if self.rate is None or count <= 0:
            return True
        self.key = self.get_cache_key(request, None)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        if len(self.history) + count > self.num_requests:
            return False
        self.history[:0] = [self.now] * count
        self.cache.set(self.key, self.history, self.duration)
        return True

    def give_back(self, request, count: int) -> None:
        """Return ``count`` questions this request took from the client's budget."""
        if self.rate is None or count <= 0:
            return
        key = self.get_cache_key(request, None)
        self.cache.set(key, self.cache.get(key, [])[count:], self.duration)

    def wait(self) -> float | None:
        """Seconds until the questions last refused fit in the budget; None if they never will
        (more than the whole rate at once)."""
        if self.count > self.num_requests:
            return None
        expiring = len(self.history) + self.count - self.num_requests  # the oldest must go
        return self.duration - (self.now - self.history[-expiring])

    def get_ident(self, request):
        return client_ip(request)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def charge_questions(request, count: int) -> None:
    """Make an API request cost ``count`` questions in all, for a view that knows how many it
    was sent (a batch of N costs N). The one the throttle took when the request arrived (if the
    view lists QuestionRateThrottle) is part of the count, not added to it.

    Raises DRF's Throttled (429, with Retry-After) when they do not fit in the client's budget
    now, and then the request costs nothing; without Retry-After, and saying so, when they
    never can (more than the whole rate).
    """
    throttle = QuestionRateThrottle()
    throttle.give_back(request, getattr(request, "questions_charged", 0))
    request.questions_charged = 0
    if throttle.spend(request, count):
        request.questions_charged = count
        return
    wait = throttle.wait()
    if wait is None:
        raise Throttled(
            detail=f"{count} questions in one request are more than the rate limit allows "
            f"({settings.QA_THROTTLE_RATE}): send at most {throttle.num_requests} at a time."
        )
    raise Throttled(
        wait,
        detail=f"This request asks {count} questions, more than this client has left of the "
        f"rate limit ({settings.QA_THROTTLE_RATE}) now.",
    )


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
