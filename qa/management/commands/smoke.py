"""``manage.py smoke``: the smoke test of a running site (qa/operations/smoke.py)."""

from django.core.management.base import BaseCommand, CommandError

from qa.operations import smoke


class Command(BaseCommand):
    help = smoke.DESCRIPTION + " Without a dev environment: python3 -m qa.operations.smoke URL."

    def add_arguments(self, parser):
        smoke.add_arguments(parser)

    def handle(self, *args, url, compression, wait, timeout, as_json, **options):
        if error := smoke.url_error(url):
            raise CommandError(error)
        text, failure = smoke.report(
            url, compression=compression, wait=wait, timeout=timeout, as_json=as_json
        )
        self.stdout.write(text)
        if failure:
            raise CommandError(failure, returncode=1)
        if not as_json:
            self.stdout.write(self.style.SUCCESS(f"{url}: all checks passed"))
