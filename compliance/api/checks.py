"""``POST /v1/compliance/check``: run an automated check of one entity against one regulation.

Two published body shapes are accepted and give the same result:
``{"entity_type", "entity_id", "regulation", "scope"}`` and
``{"agent_id", "framework", "scope": {"controls": [...]}}``. A repeat of the
same entity, regulation and scope within 24 hours returns the stored
check (200) instead of running a new one (201).
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api import schema
from compliance.api.serializers import (
    CaseInsensitiveChoiceField,
    StrictFieldsMixin,
    StrictUUIDField,
    check_items,
)
from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.catalog.models import Regulation
from compliance.checks.automated import recent_or_new_check
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Role

FRAMEWORKS = [regulation.framework for regulation in Regulation]
SHAPES = "Send either entity_type, entity_id and regulation, or agent_id and framework."


class CheckRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    entity_type = CaseInsensitiveChoiceField(choices=EntityType.values, required=False)
    entity_id = StrictUUIDField(required=False)
    regulation = CaseInsensitiveChoiceField(choices=Regulation.values, required=False)
    agent_id = StrictUUIDField(required=False, help_text="Any entity's UUID.")
    framework = CaseInsensitiveChoiceField(choices=FRAMEWORKS, required=False)
    scope = serializers.DictField(
        required=False,
        help_text='Optional {"controls": [...]} with control IDs in any spelling. '
        "Every rule of the regulation runs when it is left out.",
    )

    def validate(self, attrs):
        first = {"entity_id", "regulation"} & set(attrs)
        second = {"agent_id", "framework"} & set(attrs)
        if first and second:
            raise serializers.ValidationError(
                {"non_field_errors": [f"Mixed body shapes. {SHAPES}"]}
            )

        if second:
            missing = {"agent_id", "framework"} - second
            entity_id, regulation = attrs.get("agent_id"), attrs.get("framework")
        else:
            missing = {"entity_id", "regulation"} - first
            entity_id, regulation = attrs.get("entity_id"), attrs.get("regulation")
        if missing:
            raise serializers.ValidationError(
                {name: [f"This field is required. {SHAPES}"] for name in sorted(missing)}
            )

        return {
            "entity_id": entity_id,
            "entity_type": attrs.get("entity_type"),
            "regulation": Regulation.parse(regulation),
            "scope": attrs.get("scope"),
        }


class ComplianceCheckView(APIView):
    required_roles = {"POST": Role.OFFICER}

    @extend_schema(
        operation_id="run_compliance_check",
        summary="Run an automated compliance check",
        request=CheckRequestSerializer,
        responses={
            201: OpenApiResponse(schema.CheckItemSerializer, description="A new check."),
            200: OpenApiResponse(
                schema.CheckItemSerializer,
                description="The stored check of the same scope from the last 24 hours.",
            ),
        },
    )
    def post(self, request):
        serializer = CheckRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        entities = Entity.objects.for_tenant(request.tenant)
        if data["entity_type"]:
            entities = entities.filter(entity_type=data["entity_type"])
        entity = get_object_or_404(entities, pk=data["entity_id"])
        try:
            check, reused = recent_or_new_check(entity, data["regulation"], data["scope"])
        except ValueError as exc:
            raise serializers.ValidationError({"scope": [str(exc)]}) from None

        if not reused:
            record_request_event(
                request,
                AuditAction.CREATE,
                target=check,
                details={"entity_id": str(entity.pk), "regulation": check.regulation},
            )
        code = status.HTTP_200_OK if reused else status.HTTP_201_CREATED
        return Response(check_items([check])[0], status=code)
