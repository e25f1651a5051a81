"""What every template of the back office is told besides Django's own: whether it is served over plain HTTP on
purpose (`INSECURE_HTTP`, production only), which templates/admin/base_site.html states on every page."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def transport(request: HttpRequest) -> dict[str, Any]:
    return {"insecure_http": settings.INSECURE_HTTP}
