"""Production settings pass Django's deployment checks; HTTPS-only behaviour needs DJANGO_HTTPS=1;
DEBUG and the rate limit come from the environment. Each case is a fresh interpreter, since
settings are read once, at import."""

import json
import os
import secrets
import subprocess
import sys
import textwrap

import pytest

from qa.reader.examples import KIT_HO
from tests.helpers import REPO


def python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """A fresh interpreter in the repository, with only these variables set for qasite."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "QA_"))}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**clean, "DJANGO_SETTINGS_MODULE": "qasite.settings", **env},
    )


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    return python("-c", textwrap.dedent(code), **env)


def production_env() -> dict:
    return {"DJANGO_HTTPS": "1", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}


def test_check_deploy_is_clean_with_production_settings():
    result = python("manage.py", "check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_https_mode_sends_hsts_redirects_and_secures_the_csrf_cookie():
    result = run(
        """
        import django, json
        django.setup()
        from django.test.utils import setup_test_environment
        setup_test_environment()
        from django.test import Client
        page = Client().get("/", secure=True)
        plain = Client().get("/")
        print(json.dumps({
            "hsts": page.headers.get("Strict-Transport-Security"),
            "secure_cookie": bool(page.cookies["csrftoken"]["secure"]),
            "plain": [plain.status_code, plain.headers.get("Location")],
        }))
        """,
        **production_env(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "hsts": "max-age=31536000; includeSubDomains; preload",
        "secure_cookie": True,
        "plain": [301, "https://testserver/"],
    }


def test_https_mode_lets_a_plain_http_health_check_by_ip_address_through():
    """Load balancers check health over plain HTTP, with their target's IP address as Host (or
    none): no redirect to HTTPS there, and the redirect (with its Host check) everywhere else."""
    result = run(
        """
        import django, json
        django.setup()
        from django.test.utils import setup_test_environment
        setup_test_environment()
        from django.test import Client
        client = Client()
        print(json.dumps({
            "health": client.get("/api/health/", HTTP_HOST="10.0.1.85").status_code,
            "health, no Host": client.get("/api/health/", SERVER_NAME="").status_code,
            "health without its slash":
                client.get("/api/health", HTTP_HOST="10.0.1.85").status_code,
            "health without its slash, no Host":
                client.get("/api/health", SERVER_NAME="").status_code,
            "page": client.get("/", HTTP_HOST="10.0.1.85").status_code,
            "page, allowed host": client.get("/").status_code,
        }))
        """,
        **production_env(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "health": 200,
        "health, no Host": 200,
        "health without its slash": 200,
        "health without its slash, no Host": 200,
        "page": 400,
        "page, allowed host": 301,
    }


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("/qa", "/qa"), ("/", "/")])
def test_the_links_prefix_comes_from_the_environment(value, expected):
    env = {} if value is None else {"DJANGO_FORCE_SCRIPT_NAME": value}
    result = run("from qasite import settings; print(repr(settings.FORCE_SCRIPT_NAME))", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(expected)


SETTINGS = "from qasite import settings; print(repr((settings.DEBUG, settings.QA_THROTTLE_RATE)))"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (False, "60/min")),
        ({"DJANGO_DEBUG": "1", "QA_THROTTLE_RATE": "5/s"}, (True, "5/s")),
        ({"DJANGO_DEBUG": "0", "QA_THROTTLE_RATE": "OFF"}, (False, None)),
    ],
)
def test_debug_is_off_unless_asked_for_and_the_rate_comes_from_the_environment(env, expected):
    result = run(SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(expected)


@pytest.mark.parametrize("rate", ["60", "sixty/min", "0/min", "60/fortnight", "-1/s"])
def test_a_malformed_rate_stops_the_start(rate):
    result = run(SETTINGS, QA_THROTTLE_RATE=rate)
    assert result.returncode != 0
    assert "ImproperlyConfigured: QA_THROTTLE_RATE=" in result.stderr


ENGINE = (
    "import warnings; warnings.simplefilter('always')\n"
    "from qasite import settings\n"
    "print(repr((settings.QA_ENGINE, settings.QA_THREADS, settings.QA_FAST)))"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("onnx", 1, False)),
        ({"QA_ENGINE": "Torch", "QA_THREADS": "2", "QA_FAST": "1"}, ("torch", 2, True)),
        ({"QA_TORCH_THREADS": "3"}, ("onnx", 3, False)),
        ({"QA_TORCH_THREADS": "3", "QA_THREADS": "2"}, ("onnx", 2, False)),
    ],
)
def test_the_engine_is_onnx_unless_asked_and_threads_keep_their_former_name(env, expected):
    result = run(ENGINE, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(expected)
    deprecated = "QA_TORCH_THREADS" in env and "QA_THREADS" not in env
    assert ("QA_TORCH_THREADS is deprecated: set QA_THREADS" in result.stderr) == deprecated


MODEL = (
    "from qasite import settings\n"
    "print(repr((settings.QA_MODEL, settings.QA_MODEL_REVISION, settings.QA_MODEL_NAME)))"
)
PRODUCTION = ("mrm8488/bert-tiny-5-finetuned-squadv2", "f586274a9919ef3ca801d3c7f3f30ee6ad7515d8")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (*PRODUCTION, None)),
        # The Dockerfile's build arguments, empty unless given, reach the settings as they are.
        ({"QA_MODEL": "", "QA_MODEL_REVISION": ""}, (*PRODUCTION, None)),
        ({"QA_MODEL": "someone/model"}, ("someone/model", None, None)),
        ({"QA_MODEL": "someone/model", "QA_MODEL_REVISION": "v2"}, ("someone/model", "v2", None)),
        ({"QA_MODEL_REVISION": "main"}, (PRODUCTION[0], "main", None)),
        (
            {"QA_MODEL": "/var/task/model", "QA_MODEL_NAME": "ours"},
            ("/var/task/model", None, "ours"),
        ),
    ],
)
def test_the_production_model_is_the_default_at_its_pinned_revision(env, expected):
    result = run(MODEL, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(expected)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QA_ENGINE": "tensorflow"}, "QA_ENGINE='tensorflow': expected onnx or torch"),
        ({"QA_FAST": "1"}, "QA_FAST=1 is an option of the torch engine"),
        ({"QA_FAST": "1", "QA_ENGINE": "onnx"}, "set QA_ENGINE=torch with it"),
    ],
)
def test_an_engine_that_cannot_be_had_stops_the_start(env, message):
    result = run(ENGINE, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


# --- Django's secret key signs nothing ------------------------------------------------------------


class UntouchableKey(str):
    """A secret key that fails any test that hashes or signs with it: every use of a key (HMAC,
    signing, hashing; Django's force_bytes is ``str(key).encode()``) first turns it into bytes,
    or into a plain str."""

    def _used(self, *args, **kwargs):
        raise AssertionError("something used SECRET_KEY")

    encode = __bytes__ = __str__ = __format__ = __add__ = __radd__ = _used


def test_the_untouchable_key_catches_signing(settings):
    from django.core import signing
    from django.utils.crypto import salted_hmac

    settings.SECRET_KEY = UntouchableKey("k" * 50)
    for use in (lambda: signing.dumps("x"), lambda: salted_hmac("salt", "value")):
        with pytest.raises(AssertionError, match="something used SECRET_KEY"):
            use()


def form_token(page) -> str:
    """The CSRF token the page's form carries."""
    return page.content.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]


def every_kind_of_request(client) -> dict:
    """Every kind of request the site serves, the form's CSRF round trip included; each one's
    status, and the answer where there is one."""
    page = client.get("/")
    token = form_token(page)
    form = client.post("/", {**KIT_HO, "top_k": 1, "csrfmiddlewaretoken": token})
    api = client.post("/api/answer/", json.dumps(KIT_HO), content_type="application/json")
    hf = client.post(
        "/api/hf/question-answering/",
        json.dumps({"inputs": KIT_HO}),
        content_type="application/json",
    )
    others = {
        path: client.get(path, HTTP_ACCEPT=accept).status_code
        for path, accept in [
            ("/api/health/", "application/json"),
            ("/api/schema/", "application/vnd.oai.openapi"),
            ("/api/docs/", "text/html"),
            ("/api/answer/", "text/html"),
            ("/no/such/page/", "text/html"),
            ("/static/qa/ask.js", "*/*"),
        ]
    }
    return {
        "page": page.status_code,
        "form": (form.status_code, "<mark>" in form.content.decode()),
        "api": (api.status_code, api.json()["answer"]),
        "hf": (hf.status_code, hf.json()["answer"]),
        **others,
    }


def test_nothing_signs_with_the_secret_key(tiny_model_settings):
    """No sessions, no auth, no signed cookies; Django 5.2's CSRF cookie holds a random secret
    of its own, not one signed with SECRET_KEY. So no deployment needs a key of its own."""
    from django.test import Client

    tiny_model_settings.SECRET_KEY = UntouchableKey("k" * 50)
    seen = every_kind_of_request(Client(enforce_csrf_checks=True))
    assert seen["form"] == (200, True) and seen["api"][0] == seen["hf"][0] == 200


def test_a_csrf_cookie_from_one_instance_is_good_on_another_with_another_key(tiny_model_settings):
    """Two Lambda instances, each with its own random key: the page from one, the form posted to
    the other, behave exactly as with one key."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    tiny_model_settings.SECRET_KEY = "a" * 50
    page = client.get("/")
    token = form_token(page)
    tiny_model_settings.SECRET_KEY = "b" * 50
    form = client.post("/", {**KIT_HO, "top_k": 1, "csrfmiddlewaretoken": token})
    assert form.status_code == 200 and "<mark>" in form.content.decode()
    same_key = every_kind_of_request(Client(enforce_csrf_checks=True))
    tiny_model_settings.SECRET_KEY = "c" * 50
    assert every_kind_of_request(Client(enforce_csrf_checks=True)) == same_key


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "text"),
        ({"AWS_LAMBDA_FUNCTION_NAME": "qasite-prod-web"}, "json"),
        ({"AWS_LAMBDA_FUNCTION_NAME": "qasite-prod-web", "DJANGO_LOG_FORMAT": "text"}, "text"),
        ({"DJANGO_LOG_FORMAT": "json"}, "json"),
    ],
)
def test_logs_are_json_on_lambda_and_text_elsewhere(env, expected):
    code = """
        import logging, django
        django.setup()
        try:
            raise ValueError("a question")
        except ValueError:
            logging.getLogger("django.request").exception("Internal Server Error: /x")
    """
    result = run(code, **env)
    assert result.returncode == 0, result.stderr
    assert "a question" not in result.stderr
    if expected == "json":
        line = json.loads(result.stderr)
        assert line["message"] == "Internal Server Error: /x" and line["service"] == "qasite"
        assert line["exception"].endswith("builtins.ValueError: (message withheld)")
        assert line["exception_name"] == "ValueError"
    else:
        assert result.stderr.startswith("Internal Server Error: /x\nTraceback")
        assert result.stderr.rstrip().endswith("builtins.ValueError: (message withheld)")


def test_a_log_format_other_than_json_or_text_stops_the_start():
    result = run("import django; django.setup()", DJANGO_LOG_FORMAT="xml")
    assert "ImproperlyConfigured: DJANGO_LOG_FORMAT='xml'" in result.stderr
