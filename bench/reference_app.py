"""The reference: a minimal WSGI app serving transformers v4's question-answering pipeline, the
way the old Flask demo did (model loaded at import, one pipeline call per request). It runs in
the benchmark's reference virtualenv, never in qasite's."""

import json
import os

import torch
from transformers import pipeline

torch.set_num_threads(int(os.environ.get("QA_TORCH_THREADS", "1")))
qa = pipeline("question-answering", model=os.environ["QA_MODEL"])


def application(environ, start_response):
    if environ.get("REQUEST_METHOD") != "POST":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form method=post><textarea name=context></textarea></form>"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = json.loads(environ["wsgi.input"].read(length))
    result = qa(**request)
    body = json.dumps(result).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
