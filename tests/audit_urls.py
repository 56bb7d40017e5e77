"""The project's URLs plus ``GET /v1/audit-events``, for tests that run before the API wires it."""

from django.urls import path

from compliance.audit.api import AuditEventListView
from compliance.urls import handler404, handler500
from compliance.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("v1/audit-events", AuditEventListView.as_view(), name="audit-events"),
    *project_urlpatterns,
]
