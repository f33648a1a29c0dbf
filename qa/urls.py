from django.urls import path

from qa import huggingface, views

urlpatterns = [
    path("", views.index, name="index"),
    path("api/answer/", views.AnswerView.as_view(), name="api-answer"),
    path("api/health/", views.HealthView.as_view(), name="api-health"),
    path(
        "api/hf/question-answering/",
        huggingface.QuestionAnsweringView.as_view(),
        name="api-hf-question-answering",
    ),
]
