"""``GET /v1/audit-events``: the tenant's audit trail for admins, newest first."""

import datetime as dt

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api.params import limit_offset, validate_query
from compliance.audit.filters import AuditEventFilter
from compliance.audit.models import AuditAction, AuditEvent, AuditOutcome
from compliance.tenancy.models import Role


class AuditEventItemSerializer(serializers.Serializer):
    """The OpenAPI description of one item, which ``event_item`` builds by hand."""

    id = serializers.UUIDField()
    occurred_at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=AuditAction.choices)
    outcome = serializers.ChoiceField(choices=AuditOutcome.choices)
    actor_name = serializers.CharField(allow_blank=True)
    actor_user_id = serializers.IntegerField(allow_null=True)
    actor_key_id = serializers.UUIDField(allow_null=True)
    target_type = serializers.CharField(allow_blank=True)
    target_id = serializers.CharField(allow_blank=True)
    request_id = serializers.CharField(allow_blank=True)
    client_address = serializers.IPAddressField(allow_null=True)
    details = serializers.DictField()


class AuditEventPageSerializer(serializers.Serializer):
    items = AuditEventItemSerializer(many=True)
    total = serializers.IntegerField()


QUERY_PARAMETERS = [
    OpenApiParameter("action", OpenApiTypes.STR, enum=AuditAction.values, description="Any case."),
    OpenApiParameter("actor", OpenApiTypes.STR, description="Part of the actor's name, any case."),
    OpenApiParameter("outcome", OpenApiTypes.STR, enum=AuditOutcome.values),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="First day, UTC, inclusive."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Last day, UTC, inclusive."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size, 1..100 (default 25)."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Items to skip (default 0)."),
]


def isoformat_z(value):
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def event_item(event):
    """Return one event as the API serves it, with ``None`` for an absent actor id or address."""
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

    @extend_schema(
        operation_id="list_audit_events",
        summary="List the tenant's audit events",
        parameters=QUERY_PARAMETERS,
        responses={200: AuditEventPageSerializer},
    )
    def get(self, request):
        params = request.query_params
        filterset = AuditEventFilter(params, queryset=AuditEvent.objects.for_tenant(request.tenant))
        validate_query(params, self.parameters, filterset)
        limit, offset = limit_offset(params)

        events = filterset.qs
        total = events.count()
        page = events.order_by("-occurred_at", "-id")[offset : offset + limit]
        return Response({"items": [event_item(event) for event in page], "total": total})
