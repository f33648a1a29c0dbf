"""WSGI entry point for runserver-like servers (gunicorn) and for the Lambda handler."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qasite.settings")

application = get_wsgi_application()
