from django.urls import path, re_path

from qa import huggingface, views

# What load balancers check; qasite.middleware answers it for any Host.
HEALTH_PATH = "/api/health/"

urlpatterns = [
    path("", views.index, name="index"),
    path("api/answer/", views.AnswerView.as_view(), name="api-answer"),
    path(HEALTH_PATH.lstrip("/"), views.HealthView.as_view(), name="api-health"),
    # With or without the final slash: HF's endpoint URLs have none, and Django's APPEND_SLASH
    # cannot redirect a POST (the client would follow with a GET).
    re_path(
        r"^api/hf/question-answering/?$",
        huggingface.QuestionAnsweringView.as_view(),
        name="api-hf-question-answering",
    ),
]
