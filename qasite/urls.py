from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("", include("qa.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
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
