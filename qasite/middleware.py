"""qasite's middleware: the Content-Security-Policy header, which Django 5.2 does not send by
itself (Django 6 does), and the health check answered for any Host."""

from django.conf import settings

from qa.urls import HEALTH_PATH
from qa.views import HealthView


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


class HealthCheckMiddleware:
    """Answers GET and HEAD of the health check for any Host, or none.

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
        if request.path_info != HEALTH_PATH or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        return self.health(request).render()
