from django.urls import path

from qa import views

urlpatterns = [
    path("", views.index, name="index"),
    path("api/answer/", views.AnswerView.as_view(), name="api-answer"),
    path("api/health/", views.HealthView.as_view(), name="api-health"),
]
