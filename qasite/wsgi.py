"""WSGI entry point for runserver and gunicorn.

The model starts loading in a background thread at once, so the first page is served without
waiting for it; a request that needs the model waits for that same load.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qasite.settings")

application = get_wsgi_application()

from qa.services import lazy_answerer  # noqa: E402  (needs the settings configured above)

lazy_answerer().load_in_background()
