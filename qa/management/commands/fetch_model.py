"""``manage.py fetch_model``: the former name of ``bake_model``, kept for scripts that call it."""

from qa.management.commands import bake_model


class Command(bake_model.Command):
    help = "Deprecated: use bake_model. " + bake_model.Command.help

    def handle(self, *args, **options):
        self.stderr.write(
            "fetch_model is deprecated: use `manage.py bake_model` (the same options)."
        )
        super().handle(*args, **options)
