"""The project's routes: the app's (qa/urls.py) at the root, the OpenAPI schema
(drf-spectacular) and its Swagger UI page (drf-spectacular-sidecar's files); the 400 handler."""

from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import TemplateView


@csrf_exempt  # as every DRF view is: a POST here gets its 405, not a CSRF failure
def api_schema(request, *args, **kwargs):
    """The OpenAPI schema: drf-spectacular's view, imported by the first request for it. The URL
    conf loads with a process's first page, which never needs drf-spectacular's views and
    renderers (about 30 ms of a cold start's imports; docs/benchmark.md)."""
    from drf_spectacular.views import SpectacularAPIView

    return SpectacularAPIView.as_view()(request, *args, **kwargs)


urlpatterns = [
    path("", include("qa.urls")),
    path("api/schema/", api_schema, name="api-schema"),
    # Swagger UI, from drf-spectacular-sidecar's files. Not drf-spectacular's own view, whose
    # page starts Swagger UI with an inline script that our Content-Security-Policy blocks.
    path(
        "api/docs/",
        TemplateView.as_view(template_name="qa/api_reference.html"),
        name="api-docs",
    ),
]

# Friendly pages: templates/400.html, 403.html, 404.html, 500.html (Django's own handlers render
# the last three), and 403_csrf.html for a CSRF failure. Under /api/ errors are JSON, in every
# mode: qasite.middleware.ApiErrorsAsJsonMiddleware.
handler400 = "qa.views.bad_request"
