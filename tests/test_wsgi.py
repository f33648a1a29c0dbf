"""Under runserver/gunicorn the model loads in the background from start, exactly once."""

import subprocess
import sys
import textwrap


def test_requests_wait_for_the_background_load_within_the_bound_and_it_loads_once(
    settings, modern_model_dir
):
    """The page comes at once; a request that needs the model waits for the load under way,
    for QA_LOAD_WAIT_SECONDS at most (then 503 with Retry-After), and never loads it again."""
    script = textwrap.dedent(
        """
        import threading
        from qa import loading
        loads = []
        release = threading.Event()
        original = loading.load_answerer
        def slow_load(*args, **kwargs):
            loads.append(1)
            release.wait(30)  # a slow model, held until the script lets it finish
            return original(*args, **kwargs)
        from qa import services
        services.load_answerer = slow_load

        from qasite.wsgi import application
        from django.conf import settings
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        client = Client()
        kit_ho = {"question": "Who?", "context": "Kit-Ho Mak."}
        page = client.get("/")
        state_during_page = services.model_status()["state"]
        settings.QA_LOAD_WAIT_SECONDS = 0.5
        impatient = client.post("/api/answer/", kit_ho)
        settings.QA_LOAD_WAIT_SECONDS = 30
        threading.Timer(0.5, release.set).start()
        patient = client.post("/api/answer/", kit_ho)
        print(page.status_code, state_during_page, impatient.status_code,
              impatient.get("Retry-After"), impatient.json()["detail"].replace(" ", "_"),
              patient.status_code, len(loads))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env={"QA_MODEL": str(modern_model_dir), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "200", "loading", "503", "1", "The_model_is_still_loading.", "200", "1",
    ]
