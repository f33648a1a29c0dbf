from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("", include("qa.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]

# Friendly pages: templates/400.html, 403.html, 404.html, 500.html (Django's own handlers render
# the last three), and 403_csrf.html for a CSRF failure. Under /api/ errors are JSON, in every
# mode: qasite.middleware.ApiErrorsAsJsonMiddleware.
handler400 = "qa.views.bad_request"
