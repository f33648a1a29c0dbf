"""{% static %} URLs follow the path prefix of each request (SCRIPT_NAME or FORCE_SCRIPT_NAME),
through Django's WSGI handler as a server calls it (the test client sets no script prefix)."""

from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler

from tests.helpers import links


def get(path: str, script_name: str = "") -> tuple[str, str]:
    """GET path from a server that mounts the site at script_name: status and body."""
    environ = {"PATH_INFO": path, "SCRIPT_NAME": script_name, "HTTP_HOST": "localhost"}
    setup_testing_defaults(environ)
    answered = []
    body = b"".join(WSGIHandler()(environ, lambda status, headers: answered.append(status)))
    return answered[0], body.decode()


@pytest.mark.parametrize("prefix", ["/qa", "/prod", "/a/b"])
def test_every_link_of_the_page_follows_the_script_name_of_each_request(prefix):
    """A prefix in one request, none in the next, then the prefix again: nothing is kept from
    the first (Django keeps a relative STATIC_URL's first prefix for the life of the process)."""
    for script_name in [prefix, "", prefix]:
        status, html = get("/", script_name)
        assert status.startswith("200")
        found = links(html)
        assert {
            f"{script_name}/static/qa/site.css",
            f"{script_name}/static/qa/ask.js",
            f"{script_name}/api/answer/",
        } <= found
        assert all(link.startswith(f"{script_name}/") for link in found), found


def test_force_script_name_is_the_prefix_whatever_the_server_says(settings):
    settings.FORCE_SCRIPT_NAME = "/qa"
    found = links(get("/", "/prod")[1])
    assert "/qa/static/qa/site.css" in found
    assert all(link.startswith("/qa/") for link in found), found


def test_static_files_are_served_at_the_unprefixed_path():
    """A proxy strips the prefix it mounts the site under; WhiteNoise serves /static/..."""
    status, css = get("/static/qa/site.css", "/qa")
    assert status.startswith("200") and "mark" in css
