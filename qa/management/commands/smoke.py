import json
import urllib.parse

from django.core.management.base import BaseCommand, CommandError

from qa import smoke


class Command(BaseCommand):
    help = (
        "Smoke-test a running qasite at URL (e.g. the stack's CloudFrontUrl after a deploy): the "
        "page (200, Content-Security-Policy, compression), health ready, one answer, one 4xx, "
        "the form's CSRF round trip and, for https://, the redirect from plain HTTP. One line per "
        "check; exits 1 if any check fails."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "url", help="The site's base URL, e.g. https://d111111abcdef8.cloudfront.net"
        )
        parser.add_argument(
            "--compression",
            choices=["auto", "require", "skip"],
            default="auto",
            help="Whether the page must come back compressed: required for https:// URLs "
            "(CloudFront compresses), skipped for http:// ones (runserver and gunicorn do not); "
            "default auto.",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=30.0,
            help="Seconds to wait for health to say ready while the model loads (default 30).",
        )
        parser.add_argument(
            "--timeout", type=float, default=15.0, help="Seconds per request (default 15)."
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the report as JSON."
        )

    def handle(self, *args, url, compression, wait, timeout, as_json, **options):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CommandError(f"{url!r} is not an http:// or https:// URL")
        if compression == "auto":
            compression = "require" if parts.scheme == "https" else "skip"
        checks = smoke.run(url, compression=compression == "require", wait=wait, timeout=timeout)
        failed = [check for check in checks if check.status == smoke.FAIL]
        if as_json:
            report = {"url": url, "passed": not failed, "checks": [c.as_dict() for c in checks]}
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            width = max(len(check.name) for check in checks)
            for check in checks:
                self.stdout.write(f"{check.status}  {check.name:{width}}  {check.detail}")
        if failed:
            names = ", ".join(check.name for check in failed)
            summary = f"{len(failed)} of {len(checks)} checks failed: {names}"
            raise CommandError(summary, returncode=1)
        if not as_json:
            self.stdout.write(self.style.SUCCESS(f"{url}: all checks passed"))
