from django.urls import path

from qa import views

# What load balancers check; qasite.middleware answers it for any Host.
HEALTH_PATH = "/api/health/"

urlpatterns = [
    path("", views.index, name="index"),
    path("api/answer/", views.AnswerView.as_view(), name="api-answer"),
    path(HEALTH_PATH.lstrip("/"), views.HealthView.as_view(), name="api-health"),
]
