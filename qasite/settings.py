"""Settings for qasite, from environment variables with safe production defaults.

Set DJANGO_DEBUG=1 for local development only. Everything else has a default that is right for a
public deployment; see docs/configuration.md for the full list.
"""

import os
import re
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")

# Nothing is signed with it: no sessions, no auth, no signed cookies, and the CSRF cookie holds a
# random secret of its own (tests/test_settings.py proves every kind of request behaves the same
# under two keys). Django requires one, so a random key per process unless one is given.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or get_random_secret_key()

# Behind CloudFront, Host is API Gateway's and Origin is CloudFront's (or your domain's): list the
# first in DJANGO_ALLOWED_HOSTS and the second, with https://, in DJANGO_CSRF_TRUSTED_ORIGINS.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# The path prefix the site's links carry. Unset: the one the server gives in SCRIPT_NAME (on
# Lambda, a REST API or HTTP API stage in the URL: qasite/lambda_environ.py). Set it for a proxy
# that mounts the site under a prefix and strips it from the path it forwards ("/qa"), or to "/"
# for none where a proxy adds the stage itself (CloudFront with the origin path "/prod").
FORCE_SCRIPT_NAME = os.environ.get("DJANGO_FORCE_SCRIPT_NAME")

# DJANGO_HTTPS=1: served over HTTPS by a TLS-terminating proxy (API Gateway, CloudFront, a load
# balancer) that sets X-Forwarded-Proto. Then cookies are HTTPS-only and browsers get HSTS.
if env_bool("DJANGO_HTTPS"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Load balancers check health over plain HTTP, by IP address (qasite.middleware).
    SECURE_REDIRECT_EXEMPT = [r"^api/health/?$"]
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    # The site's hosts (dxxxx.cloudfront.net, xxxx.execute-api.<region>.amazonaws.com, or a custom
    # name for the site alone) have no subdomains that could need plain HTTP, and both AWS
    # endpoints refuse plain HTTP anyway: nothing is lost by covering subdomains. "preload" only
    # consents to the browsers' preload list; nothing is listed until the owner of the registered
    # domain submits it at hstspreload.org, so serving the site on an apex domain with HTTP-only
    # subdomains is the one case to set DJANGO_HSTS_SECONDS=0 (and drop the header) instead.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Headers on every response (qasite.middleware and Django's SecurityMiddleware): a strict
# Content-Security-Policy (no inline script or style anywhere, see templates/), nosniff,
# Referrer-Policy same-origin, Cross-Origin-Opener-Policy same-origin, X-Frame-Options DENY.
# Same shape as Django 6's SECURE_CSP, whose middleware can replace ours on upgrade.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us (templates/qa/api_reference.html)
    "qa",
]

# JSON errors under /api/ come early, to see every error as a response. The header-only
# middleware comes before WhiteNoise, which answers static files itself: so static files get the
# security headers too. A path missing only its trailing slash is answered before CommonMiddleware
# would redirect it (qasite/middleware.py).
# Metrics and Cache-Control come before them all, to see every response as it leaves; requests
# that bypass the proxy are refused before anything answers (health and static files too).
MIDDLEWARE = [
    "qasite.middleware.RequestMetricsMiddleware",
    "qasite.middleware.NoStoreMiddleware",
    "qasite.middleware.ApiErrorsAsJsonMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "qasite.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "qasite.middleware.ProxyOnlyMiddleware",
    "qasite.middleware.HealthCheckMiddleware",  # before anything that checks Host
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "qasite.middleware.TrailingSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "qasite.middleware.MethodNotAllowedMiddleware",  # a 405 before CSRF's 403
    "django.middleware.csrf.CsrfViewMiddleware",
    "qasite.middleware.RustPanicMiddleware",  # last: a view's panic, a 500 all the above see
]

ROOT_URLCONF = "qasite.urls"
WSGI_APPLICATION = "qasite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
            ],
        },
    },
]

# No database: the service stores nothing.
DATABASES = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Absolute, and prefixed per request by the storage: links follow the path prefix the site is
# served under (qasite/static_files.py).
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "qasite.static_files.ScriptPrefixedStaticFilesStorage"},
}
# WhiteNoise serves static files straight from the apps' folders, so nothing needs collecting.
WHITENOISE_USE_FINDERS = True
# And these at the site's root: /favicon.ico (qa/static/qa/favicon.svg drawn at 16, 32 and 48
# pixels), which browsers ask for on pages that link no icon (JSON, the schema).
WHITENOISE_ROOT = BASE_DIR / "qa" / "root"

# Bodies above this answer 413; below Lambda's 6 MB payload limit, and room for a full batch.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("QA_MAX_BODY_BYTES", 5 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "qa.parsers.ContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "qa.exceptions.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "qasite",
    "DESCRIPTION": "Extractive question answering: the span of a context that answers a question.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # drf-spectacular's default
        "qa.openapi.servers_under_the_prefix",
    ],
}

# The production model and the hub commit of it that is downloaded and baked (so that a rebuild
# bakes the same weights). Declared here only: `manage.py bake_model`, and through it the Makefile
# and the Dockerfile, bake it when they are given no other model.
PRODUCTION_MODEL = "mrm8488/bert-tiny-5-finetuned-squadv2"
PRODUCTION_MODEL_REVISION = "f586274a9919ef3ca801d3c7f3f30ee6ad7515d8"
# The question-answering model: a Hugging Face hub id, or a local directory (a baked one on
# Lambda). Empty means the default too (the Dockerfile passes its build arguments on as they are).
QA_MODEL = os.environ.get("QA_MODEL") or PRODUCTION_MODEL
# The hub revision (commit, branch or tag) of a hub QA_MODEL: pinned for the production model;
# for another, the hub's default branch unless QA_MODEL_REVISION names one.
QA_MODEL_REVISION = os.environ.get("QA_MODEL_REVISION") or (
    PRODUCTION_MODEL_REVISION if QA_MODEL == PRODUCTION_MODEL else None
)
# The name health reports. Unset: what a baked directory records of its source (qa.model.files.
# model_name), so no directory path is shown.
QA_MODEL_NAME = os.environ.get("QA_MODEL_NAME") or None
# The engine that runs the model (qa/model/backends): "onnx" (ONNX Runtime; no torch needed to
# serve a
# baked graph) or "torch" (TorchScript). The same default in development and on Lambda.
QA_ENGINE = os.environ.get("QA_ENGINE", "onnx").strip().lower()
if QA_ENGINE not in {"onnx", "torch"}:
    raise ImproperlyConfigured(f"QA_ENGINE={QA_ENGINE!r}: expected onnx or torch")
# CPU threads the engine computes on. One is the fastest for a small model on a small, shared CPU;
# raise it for big contexts. QA_TORCH_THREADS is its former name, still read.
if "QA_THREADS" not in os.environ and "QA_TORCH_THREADS" in os.environ:
    warnings.warn(
        "QA_TORCH_THREADS is deprecated: set QA_THREADS", DeprecationWarning, stacklevel=1
    )
    QA_THREADS = env_int("QA_TORCH_THREADS", 1)
else:
    QA_THREADS = env_int("QA_THREADS", 1)
# Where the onnx engine caches the graph it exports from a model directory that has none (one
# graph per content of the weights). Lambda's handler points XDG_CACHE_HOME at /tmp.
QA_CACHE_DIR = Path(
    os.environ.get("QA_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qasite"
)
# Fast mode (torch engine only): the model computes in bfloat16, faster on a CPU with bfloat16
# units (slower on one without), and a few answers differ from exact mode's (docs/how-it-works.md,
# "Fast mode",
# has the measurements). Off: answers are transformers v4's.
QA_FAST = env_bool("QA_FAST")
if QA_FAST and QA_ENGINE != "torch":
    raise ImproperlyConfigured(
        "QA_FAST=1 is an option of the torch engine (ONNX Runtime has no bfloat16 kernels for "
        "these models on x86 CPUs): set QA_ENGINE=torch with it, or unset QA_FAST"
    )
QA_MAX_QUESTION_CHARS = env_int("QA_MAX_QUESTION_CHARS", 500)
QA_MAX_CONTEXT_CHARS = env_int("QA_MAX_CONTEXT_CHARS", 20_000)
QA_MAX_BATCH = env_int("QA_MAX_BATCH", 32)
# Most characters of questions and contexts in one batch (413 above it): the work of a call grows
# with its text, and must end well within Lambda's 29 s: 32 full contexts would keep a 6-layer
# model busy past it (docs/api.md, "The JSON API").
QA_MAX_BATCH_CHARS = env_int("QA_MAX_BATCH_CHARS", 100_000)
# How long a request waits for a model load already under way before answering 503.
QA_LOAD_WAIT_SECONDS = env_int("QA_LOAD_WAIT_SECONDS", 25)

# Questions per client address (qa/throttling.py), API and form together: "60/min", "5/s",
# "1000/hour", "10000/day", or "off". Counted in the default cache, local memory: per process,
# so per Lambda instance; API Gateway's throttling and the reserved concurrency in
# serverless.yml bound the total.
QA_THROTTLE_RATE = os.environ.get("QA_THROTTLE_RATE", "60/min").strip().lower()
if QA_THROTTLE_RATE == "off":
    QA_THROTTLE_RATE = None
elif not re.fullmatch(r"[1-9]\d*/(s|sec|m|min|h|hour|d|day)", QA_THROTTLE_RATE):
    raise ImproperlyConfigured(f"QA_THROTTLE_RATE={QA_THROTTLE_RATE!r}: expected 60/min, off...")
# Whose rate it is: REMOTE_ADDR (the peer's address, which nobody can forge), unless the proxy in
# front gives the client's "address:port" in a header named here (CloudFront-Viewer-Address).
# Anyone can send that header too, so when the proxy can be bypassed (API Gateway's own URL is
# public) also set a proxy secret: the proxy sends it in X-Origin-Verify, and every request
# without it is refused (403). See qa/origin.py and qa/throttling.py.
QA_CLIENT_IP_HEADER = os.environ.get("QA_CLIENT_IP_HEADER", "")
# The proxy's secrets: comma-separated (several during a rotation), or, better, the name of an SSM
# SecureString parameter holding them (separated by spaces or commas), read with the function's
# role and cached for QA_PROXY_SECRET_MAX_AGE seconds, so a rotation needs no redeploy.
QA_PROXY_SECRET = os.environ.get("QA_PROXY_SECRET", "")
QA_PROXY_SECRET_PARAMETER = os.environ.get("QA_PROXY_SECRET_PARAMETER", "")
QA_PROXY_SECRET_MAX_AGE = env_int("QA_PROXY_SECRET_MAX_AGE", 300)

# AWS X-Ray tracing of each invocation (AWS Lambda Powertools' Tracer, qasite/lambda_handler.py):
# off unless asked, since importing the X-Ray SDK adds to every cold start.
QA_TRACING = env_bool("QA_TRACING")

# One handler for everything, Django's own loggers included (instead of its DEBUG-only console
# handler), so that no exception message, which might quote a user's input, is ever logged.
# DJANGO_LOG_FORMAT: "json" (one JSON object a line, AWS Lambda Powertools' format, with the
# invocation's request id and cold start: the default on Lambda) or "text".
LOG_FORMAT = os.environ.get(
    "DJANGO_LOG_FORMAT", "json" if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else "text"
)
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT={LOG_FORMAT!r}: expected json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "withhold_messages": {"()": "qa.operations.log_filters.WithholdExceptionMessages"},
        "drop_no_loss_notice": {"()": "qa.operations.log_filters.DropNoLossNotice"},
        "summarize_request": {"()": "qa.operations.log_filters.SummarizeRequest"},
        "redact_secrets": {"()": "qa.operations.log_filters.RedactSecrets"},
    },
    "formatters": {  # only the one in use: the JSON one imports Powertools
        "console": {"format": "%(message)s"}
        if LOG_FORMAT == "text"
        else {
            "()": "aws_lambda_powertools.logging.formatter.LambdaPowertoolsFormatter",
            "service": "qasite",
            "json_serializer": "ext://qa.operations.log_filters.ascii_json",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["withhold_messages", "summarize_request", "redact_secrets"],
            "formatter": "console",
        },
    },
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        # Their records carry the request: summarized before any handler, not only the console.
        "django.request": {"filters": ["summarize_request"]},
        "django.security.csrf": {"filters": ["summarize_request"]},
        # transformers logs through its own handler; this filter sits on the logger itself.
        "transformers.modeling_utils": {"filters": ["drop_no_loss_notice"]},
        # At DEBUG the AWS SDK and its HTTP client log whole requests and answers: signed
        # headers, the session token, SSM's decrypted values. Never below INFO, whatever
        # DJANGO_LOG_LEVEL says (and qa.operations.log_filters.RedactSecrets would redact them
        # anyway).
        **{name: {"level": "INFO"} for name in ["boto3", "botocore", "s3transfer", "urllib3"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
