"""One side of a benchmark, run in its own process: qasite (this repo's venv) or the reference
(transformers v4's pipeline, in the reference venv). Reads JSON commands on stdin, one per line,
and answers each with one JSON line on stdout.

    python bench/worker.py SIDE MODEL_DIR

SIDE: qasite-engine (the onnx engine, the default), qasite-engine-torch (TorchScript),
qasite-engine-fast (TorchScript in bfloat16), qasite-floor (tokenization and the onnx engine's
forward pass only), qasite-handler[-torch] (the Lambda handler on that engine), ref-pipeline or
ref-wsgi (the reference).
"""

import functools
import io
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def qasite_engine(model_dir, engine="onnx", fast=False):
    sys.path.insert(0, ROOT)
    from qa.model.loading import load_answerer
    from qa.reader.answerer import Options

    answerer = load_answerer(model_dir, threads=1, engine=engine, fast=fast)

    def answer(question, context, **options):
        return [vars(a) for a in answerer.answer(question, context, Options(**options))]

    return answer


def qasite_floor(model_dir):
    """Tokenization plus the onnx engine's forward pass over all windows, nothing else: what no
    implementation of the algorithm avoids."""
    sys.path.insert(0, ROOT)
    from qa.model.loading import load_answerer
    from qa.reader.answerer import Options

    answerer = load_answerer(model_dir, threads=1)

    def answer(question, context, **options):
        windows = answerer.windows(question, context, Options())
        answerer._forward(*answerer.batch(windows))
        return []

    return answer


def qasite_handler(model_dir, engine="onnx"):
    """The real Lambda handler, fed HTTP API v2 events."""
    sys.path.insert(0, ROOT)
    # One client asking thousands of questions: the rate limit would stop it after 60.
    os.environ.update(
        QA_MODEL=model_dir,
        DJANGO_ALLOWED_HOSTS="*",
        QA_THREADS="1",
        QA_THROTTLE_RATE="off",
        QA_ENGINE=engine,
    )
    with open(os.path.join(ROOT, "events", "http-api-v2-post-answer.json")) as file:
        template = json.load(file)
    from qasite import lambda_handler

    def answer(question, context, **options):
        event = dict(
            template, body=json.dumps({"question": question, "context": context, **options})
        )
        with _quiet():
            response = lambda_handler.handler(event, None)
        if response["statusCode"] != 200:  # a timing of an error page would mean nothing
            raise RuntimeError(f"the handler answered {response['statusCode']}: {response['body']}")
        return json.loads(response["body"])

    return answer


def ref_pipeline(model_dir):
    import torch
    from transformers import pipeline

    torch.set_num_threads(1)
    qa = pipeline("question-answering", model=model_dir)

    def answer(question, context, **options):
        result = qa(question=question, context=context, **options)
        return result if isinstance(result, list) else [result]

    return answer


def ref_wsgi(model_dir):
    """The old demo's way of serving: a WSGI app around the pipeline, called with a WSGI environ."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    os.environ["QA_MODEL"] = model_dir
    from reference_app import application

    def answer(question, context, **options):
        body = json.dumps({"question": question, "context": context, **options}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/answer",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
        }
        chunks = application(environ, lambda status, headers: None)
        return json.loads(b"".join(chunks))

    return answer


def rss_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident memory, in MB. (Not getrusage: on
    Linux a child's ru_maxrss starts from its parent's at fork, so it would report the
    benchmark's own size.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class _quiet:
    """The handler's request log line goes to stdout, which is our protocol channel."""

    def __enter__(self):
        self.stdout, sys.stdout = sys.stdout, sys.stderr

    def __exit__(self, *exc):
        sys.stdout = self.stdout


SIDES = {
    "qasite-engine": qasite_engine,
    "qasite-engine-torch": functools.partial(qasite_engine, engine="torch"),
    "qasite-engine-fast": functools.partial(qasite_engine, engine="torch", fast=True),
    "qasite-floor": qasite_floor,
    "qasite-handler": qasite_handler,
    "qasite-handler-torch": functools.partial(qasite_handler, engine="torch"),
    "ref-pipeline": ref_pipeline,
    "ref-wsgi": ref_wsgi,
}


def main():
    started = time.perf_counter()
    side, model_dir = sys.argv[1], sys.argv[2]
    answer = SIDES[side](model_dir)
    print(json.dumps({"ready": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "answer":
            result = answer(command["question"], command["context"], **command.get("options", {}))
            print(json.dumps({"result": result}), flush=True)
        elif command["do"] == "time":
            durations = []
            for _ in range(command["repeat"]):
                begin = time.perf_counter()
                answer(command["question"], command["context"])
                durations.append(time.perf_counter() - begin)
            print(json.dumps({"durations": durations}), flush=True)
        elif command["do"] == "rss":
            print(
                json.dumps({"peak_mb": rss_mb("VmHWM"), "current_mb": rss_mb("VmRSS")}), flush=True
            )


if __name__ == "__main__":
    main()
