"""Logging filters that keep what users send and the secrets the process holds out of the logs,
one notice that is not news, and the serializer of JSON log lines."""

import functools
import json
import logging
import os
import re
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


REDACTED = "[redacted]"
# A value shorter than this is no secret (a guess finds it) and would blot out common words.
MIN_SECRET_LENGTH = 8
# The function's AWS credentials, where Lambda's runtime gives them: the environment (the access
# key id is no secret), or, under SnapStart, a local endpoint and the token that reads it.
CREDENTIAL_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)

_withheld: set[str] = set()

# A value quoted by {q}, escaped quotes included, up to its closing quote (left in place).
_QUOTED = r"""(?:\\+{q}|(?!{q}).)*(?={q})"""
# Credentials in the shapes botocore writes them (request headers, canonical requests, query
# strings) and AWS returns them (credentials as JSON), and a SecureString's decrypted value in
# an SSM response; each keeps its name and loses its value.
CREDENTIAL_PATTERNS = [
    # 'X-Amz-Security-Token': b'...', "SecretAccessKey": "...", 'Authorization': '...'
    re.compile(
        r"""((?P<k>["'])(?:x-amz-security-token|authorization|secretaccesskey|sessiontoken|token"""
        r"""|aws_secret_access_key|aws_session_token)(?P=k)\s*:\s*b?(?P<q>["']))"""
        + _QUOTED.format(q="(?P=q)"),
        re.IGNORECASE,
    ),
    # x-amz-security-token:... (a canonical request's header line), X-Amz-Signature=... (a URL)
    re.compile(
        r"((?:x-amz-security-token|x-amz-signature|x-amz-credential)[:=])[^\s&'\"]+",
        re.IGNORECASE,
    ),
    # AWS4-HMAC-SHA256 Credential=<key id>/<scope>, SignedHeaders=..., Signature=<hex>
    re.compile(r"(AWS4-HMAC-SHA256 Credential=)[^'\"\n]+"),
    # Signature:\n<hex> (botocore.auth), Signature=<hex>
    re.compile(r"(signature[:=]\s*)[0-9a-f]{64}", re.IGNORECASE),
]
SECURESTRING_VALUE = re.compile(r"""("Value"\s*:\s*")""" + _QUOTED.format(q='"'))
# A word one of CREDENTIAL_PATTERNS needs (lowercased): a text without any is left as it is,
# quickly.
_CREDENTIAL_WORDS = (
    "token",
    "authorization",
    "secretaccesskey",
    "aws_secret",
    "x-amz-",
    "aws4-hmac",
    "signature",
)


def keep_out_of_logs(*secrets: str) -> None:
    """Add ``secrets`` to the values every RedactSecrets filter replaces from now on, wherever a
    record holds them (those shorter than MIN_SECRET_LENGTH are ignored)."""
    _withheld.update(secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH)


@functools.lru_cache(maxsize=4)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern | None:
    """One pattern of every secret, the longest first (so that none is left half-replaced)."""
    if not secrets:
        return None
    return re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))


def _known_secrets() -> re.Pattern | None:
    """One pattern of the secrets known to the process now (keep_out_of_logs and
    CREDENTIAL_VARIABLES), or None."""
    credentials = (os.environ.get(name, "") for name in CREDENTIAL_VARIABLES)
    known = _withheld | {value for value in credentials if len(value) >= MIN_SECRET_LENGTH}
    return _secrets_pattern(frozenset(known))


def redact(text: str, secrets: re.Pattern | None = None) -> str:
    """``text`` with every secret known to the process (keep_out_of_logs, CREDENTIAL_VARIABLES)
    replaced by REDACTED, and the values in CREDENTIAL_PATTERNS, and an SSM SecureString's,
    too. ``secrets``: the pattern of the known secrets, when the caller has it already."""
    secrets = secrets or _known_secrets()
    if secrets is not None:
        text = secrets.sub(REDACTED, text)
    lowered = text.lower()
    if "securestring" in lowered:
        text = SECURESTRING_VALUE.sub(lambda match: match.group(1) + REDACTED, text)
    if any(word in lowered for word in _CREDENTIAL_WORDS):
        for pattern in CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


# A record's own attributes that hold no text from outside the code (its logger's name, level,
# source file, function, thread...): all but the message, the traceback and stack texts, and
# what ``extra=...`` adds.
_CODE_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) - {
    "exc_text",
    "stack_info",
}


class RedactSecrets(logging.Filter):
    """Replaces the secrets a record holds (redact) in its message, its traceback text and the
    attributes a JSON formatter writes (``extra=...``), at every level, from every logger.

    The origin secrets arrive in every request's ``X-Origin-Verify`` and in SSM's answers, and
    boto3 signs each call with the function's credentials: none may reach a log line, whatever
    a library chooses to log. A record with nothing to replace is left as it is (a dict message
    stays a dict for Powertools' formatter).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _known_secrets()
        try:
            message = record.getMessage()
        except Exception:  # the handler would print msg and args as they are: no message then
            message = f"{record.msg!r} {record.args!r}"
        if (clean := redact(message, secrets)) != message:
            record.msg, record.args = clean, None
        for name in vars(record).keys() - _CODE_ATTRIBUTES:
            value = getattr(record, name)
            if not isinstance(value, (str, dict, list, tuple)):
                continue
            text = value if isinstance(value, str) else repr(value)
            if (clean := redact(text, secrets)) != text:
                setattr(record, name, clean)
        return True
