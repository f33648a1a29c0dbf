"""Field validators the page's form and the API's serializers share."""

from django.core.exceptions import ValidationError


def validate_not_blank(value: str) -> None:
    """Whitespace is kept (answer offsets index the text as sent) but cannot be all there is."""
    if not value.strip():
        raise ValidationError("This field may not be blank.", code="blank")
