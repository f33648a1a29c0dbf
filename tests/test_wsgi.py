"""Under runserver/gunicorn the model loads in the background from start, exactly once."""

import subprocess
import sys
import textwrap


def test_first_page_is_served_while_the_model_loads_and_it_loads_once(settings, modern_model_dir):
    script = textwrap.dedent(
        """
        import time
        from qa import loading
        loads = []
        original = loading.load_answerer
        def counting_load(*args, **kwargs):
            loads.append(1)
            time.sleep(1)  # a slow model, so the page comes first
            return original(*args, **kwargs)
        loading.load_answerer = counting_load
        from qa import services
        services.load_answerer = counting_load

        from qasite.wsgi import application
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        client = Client()
        page = client.get("/")
        state_during_page = services.model_status()["state"]
        answer = client.post("/api/answer/", {"question": "Who?", "context": "Kit-Ho Mak."})
        print(page.status_code, state_during_page, answer.status_code, len(loads))
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
    assert result.stdout.split() == ["200", "loading", "200", "1"]
