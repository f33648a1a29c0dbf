"""``manage.py bake_model``: the README's verb for what ``fetch_model`` does (the model written
ready to serve offline). ``fetch_model`` stays, under which the build scripts call it."""

from qa.management.commands import fetch_model


class Command(fetch_model.Command):
    pass
