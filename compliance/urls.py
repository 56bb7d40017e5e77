from django.urls import include, path
from django.views import defaults

from compliance.api.errors import not_found_json, server_error_json

urlpatterns = [
    path("v1/", include("compliance.api.urls")),
    path("", include("compliance.web.urls")),
]


def handler404(request, exception):
    """Return unknown API URLs as the JSON error envelope and pages with HTML."""
    if request.path.startswith("/v1/"):
        return not_found_json(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/v1/"):
        return server_error_json(request)
    return defaults.server_error(request)
