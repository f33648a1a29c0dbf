"""WSGI entry point for runserver and gunicorn.

Importing this module has side effects, on purpose: it builds the WSGI application and starts
a timer thread. The model loads in a background thread once the first response has gone out, or
after IDLE_SECONDS without any request: loading holds the interpreter (importing the engine's
libraries, perhaps exporting a graph), and the first visitor's page should not wait behind it. A
request that needs the model sooner loads it itself, or waits for the load under way: the
process has one model holder (qa.services.lazy_answerer), which loads the model once, whichever
thread asks first.
"""

import os
import threading

from django.core.signals import request_finished
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qasite.settings")

application = get_wsgi_application()

from qa.services import lazy_answerer  # noqa: E402  (needs the settings configured above)

IDLE_SECONDS = 2.0
_load_started = False
_start_lock = threading.Lock()


def start_loading_the_model(**_) -> None:
    """Starts the background load, the first time only (request threads and the idle timer may
    call it at once)."""
    global _load_started
    with _start_lock:
        if _load_started:
            return
        _load_started = True
    lazy_answerer().load_in_background()


request_finished.connect(start_loading_the_model)
_idle_timer = threading.Timer(IDLE_SECONDS, start_loading_the_model)
_idle_timer.daemon = True
_idle_timer.start()
