"""Logging filters that keep what users send out of the logs, one notice that is not news, and
the serializer of JSON log lines."""

import json
import logging
import traceback


def ascii_json(log: dict) -> str:
    """A JSON log line in ASCII (AWS Lambda Powertools' formatters take it as json_serializer):
    a path or header may hold any Unicode, lone surrogates too, which no stream could encode."""
    return json.dumps(log, ensure_ascii=True, separators=(",", ":"), default=str)


class WithholdExceptionMessages(logging.Filter):
    """Logged tracebacks keep their frames but lose the exception's message.

    qasite logs nothing of what users ask, but an unexpected exception's message could quote a
    question or a context (a 500's traceback is logged by django.request): the frames are enough
    to find the bug, the message stays out.

    The withheld traceback replaces the exception itself (``exc_info`` becomes None), for every
    formatter: logging's own prints ``exc_text``; AWS Lambda Powertools' JSON formatter, which
    formats ``exc_info`` itself whatever ``exc_text`` holds, takes ``exception`` and
    ``exception_name`` from the record instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            kind, _, frames = record.exc_info
            record.exc_text = record.exception = (
                "Traceback (most recent call last):\n"
                + "".join(traceback.format_tb(frames))
                + f"{kind.__module__}.{kind.__qualname__}: (message withheld)"
            )
            record.exception_name = kind.__name__
            record.exc_info = None
        return True


class SummarizeRequest(logging.Filter):
    """Replaces the request Django attaches to its records of 4xx and 5xx responses
    (``extra={"request": ...}``) with its method and path.

    A JSON formatter writes every attribute of a record, and the request's repr carries its query
    string, which may hold anything a client typed. The path is in the message already.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            record.request = f"{getattr(request, 'method', '?')} {getattr(request, 'path', '?')}"
        return True


class DropNoLossNotice(logging.Filter):
    """Drops transformers' notice that a model has no loss function ("`loss_type=None` was set
    in the config but it is unrecognized").

    torch.jit.trace probes every attribute of every module it traces, so tracing a QA model reads
    the ``loss_function`` of the encoder inside it, which has none, and the notice is printed on
    every load. A loss is only computed in training, which qasite never does.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("`loss_type=")
