"""``GET /v1/audit-events``: the tenant's audit trail for admins, newest first."""

import datetime as dt

from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api.params import limit_offset, validate_query
from compliance.audit.filters import AuditEventFilter
from compliance.audit.models import AuditEvent
from compliance.tenancy.models import Role


def isoformat_z(value):
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def event_item(event):
    """Return one event as the API serves it, with ids as strings or ``None`` when absent."""
    return {
        "id": str(event.pk),
        "occurred_at": isoformat_z(event.occurred_at),
        "action": event.action,
        "outcome": event.outcome,
        "actor_name": event.actor_name,
        "actor_user_id": event.actor_user_id,
        "actor_key_id": str(event.actor_key_id) if event.actor_key_id else None,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "request_id": event.request_id,
        "client_address": event.client_address,
        "details": event.details,
    }


class AuditEventListView(APIView):
    """List the tenant's audit events as ``{"items", "total"}``, filtered and paginated.

    Query: ``action``, ``actor`` (part of the actor's name, any case),
    ``outcome``, ``date_from`` and ``date_to`` (``YYYY-MM-DD``, inclusive, in
    UTC), ``limit`` and ``offset``. Events without a tenant, such as failed
    authentications with an unknown key, are not listed for any tenant.
    """

    required_roles = {"GET": Role.ADMIN, "HEAD": Role.ADMIN, "OPTIONS": Role.ADMIN}
    parameters = {"action", "actor", "outcome", "date_from", "date_to", "limit", "offset"}

    def get(self, request):
        params = request.query_params
        filterset = AuditEventFilter(params, queryset=AuditEvent.objects.for_tenant(request.tenant))
        validate_query(params, self.parameters, filterset)
        limit, offset = limit_offset(params)

        events = filterset.qs
        total = events.count()
        page = events.order_by("-occurred_at", "-id")[offset : offset + limit]
        return Response({"items": [event_item(event) for event in page], "total": total})
