from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("", include("qa.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]

# Friendly pages, and JSON under /api/ (qa/views.py); a CSRF failure renders templates/403_csrf.html.
handler400 = "qa.views.bad_request"
handler403 = "qa.views.permission_denied"
handler404 = "qa.views.page_not_found"
handler500 = "qa.views.server_error"
