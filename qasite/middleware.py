"""The Content-Security-Policy header, which Django 5.2 does not send by itself (Django 6 does)."""

from django.conf import settings


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
