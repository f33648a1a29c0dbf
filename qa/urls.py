"""The app's routes: the page, the API, health and the Hugging Face-shaped endpoint (the project's
qasite/urls.py adds the schema and its docs, and mounts these at the root)."""

from django.urls import path

from qa import huggingface, views

# What load balancers check; qasite.middleware answers it for any Host.
HEALTH_PATH = "/api/health/"

urlpatterns = [
    path("", views.index, name="index"),
    path("api/answer/", views.AnswerView.as_view(), name="api-answer"),
    path(HEALTH_PATH.lstrip("/"), views.HealthView.as_view(), name="api-health"),
    # Also asked without the final slash (HF's endpoint URLs have none): answered as if it had
    # it by qasite.middleware.TrailingSlashMiddleware, as every path under /api/ is.
    path(
        "api/hf/question-answering/",
        huggingface.QuestionAnsweringView.as_view(),
        name="api-hf-question-answering",
    ),
]
