"""Production settings pass Django's deployment checks; HTTPS-only behaviour needs DJANGO_HTTPS=1;
DEBUG and the rate limit come from the environment. Each case is a fresh interpreter, since
settings are read once, at import."""

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """A fresh interpreter in the repository, with only these variables set for qasite."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "QA_"))}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO,
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
            "page": client.get("/", HTTP_HOST="10.0.1.85").status_code,
            "page, allowed host": client.get("/").status_code,
        }))
        """,
        **production_env(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "health": 200, "health, no Host": 200, "page": 400, "page, allowed host": 301,
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
