"""drf-spectacular's schema, as this site serves it."""

from django.urls import get_script_prefix


def servers_under_the_prefix(result, generator, request, public):
    """A postprocessing hook: ``servers`` is the path prefix the schema was asked under
    (DJANGO_FORCE_SCRIPT_NAME, a REST API stage), so that Swagger UI's "Try it out" posts to
    /prod/api/answer/, not /api/answer/. None without a prefix (OpenAPI's default server is
    "/"), or when the schema is generated outside a request (manage.py spectacular)."""
    prefix = get_script_prefix().rstrip("/") if request is not None else ""
    if prefix:
        result["servers"] = [{"url": prefix}]
    return result
