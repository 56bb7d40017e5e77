"""Entities over the API: list, create, read, update and delete, within the caller's tenant."""

from django.db import models
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers

from compliance.api.errors import Conflict
from compliance.api.filtering import StrictFilterBackend
from compliance.api.pagination import StrictLimitOffsetPagination
from compliance.api.params import parse_uuid
from compliance.api.permissions import READ_ROLES
from compliance.api.serializers import (
    CaseInsensitiveChoiceField,
    StrictCharField,
    StrictFieldsMixin,
)
from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.inventory.filters import EntityFilter
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Role

WRITE = {"POST": Role.OFFICER, "PATCH": Role.OFFICER, "DELETE": Role.OFFICER}


class EntitySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }

    entity_type = CaseInsensitiveChoiceField(choices=EntityType.values)
    attributes = serializers.JSONField(
        required=False, help_text="The facts that automated checks read, as a JSON object."
    )

    class Meta:
        model = Entity
        fields = [
            "id",
            "entity_type",
            "name",
            "description",
            "owner",
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate_entity_type(self, value):
        if self.instance is not None and value != self.instance.entity_type:
            raise serializers.ValidationError(
                "An entity's type cannot change, because its checks and reports refer to it."
            )
        return value

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("May not be blank.")
        return value.strip()


def _summary(entity):
    return {"name": entity.name, "entity_type": entity.entity_type}


class TenantEntities:
    serializer_class = EntitySerializer
    pagination_class = StrictLimitOffsetPagination
    filter_backends = [StrictFilterBackend]
    filterset_class = EntityFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Entity.objects.none()
        return Entity.objects.for_tenant(self.request.tenant).order_by("-created_at", "-id")

    def get_object(self):
        entity_id = parse_uuid(self.kwargs["entity_id"], "entity_id")
        return get_object_or_404(self.get_queryset(), pk=entity_id)


class EntityListView(TenantEntities, generics.ListCreateAPIView):
    required_roles = {**READ_ROLES, **WRITE}

    def perform_create(self, serializer):
        entity = serializer.save(tenant=self.request.tenant)
        record_request_event(
            self.request, AuditAction.CREATE, target=entity, details=_summary(entity)
        )


@extend_schema(methods=["PUT"], exclude=True)
class EntityDetailView(TenantEntities, generics.RetrieveUpdateDestroyAPIView):
    required_roles = {**READ_ROLES, **WRITE}
    http_method_names = ["get", "patch", "delete", "head", "options"]
    lookup_url_kwarg = "entity_id"

    @extend_schema(
        responses={204: None, 409: OpenApiResponse(description="The entity has evidence.")}
    )
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)

    def perform_update(self, serializer):
        entity = serializer.save()
        record_request_event(
            self.request,
            AuditAction.UPDATE,
            target=entity,
            details={**_summary(entity), "fields": sorted(serializer.validated_data)},
        )

    def perform_destroy(self, instance):
        checks = instance.checks.count()
        reports = instance.reports.count()
        if checks or reports:
            raise Conflict(
                f"The entity has {checks} checks and {reports} reports, which are kept as "
                "evidence, so it cannot be deleted."
            )
        # Deleting an auditor's only chosen entity would leave the scope without
        # entities, which means every entity, so the auditor would see more.
        scoped = instance.scoped_memberships.select_related("user").order_by("user__username")
        if scoped:
            usernames = ", ".join(membership.user.get_username() for membership in scoped)
            raise Conflict(
                f"The entity is in the scope of the auditors {usernames}, so it cannot be "
                "deleted. Remove it from their scope on the members page first."
            )
        record_request_event(
            self.request, AuditAction.DELETE, target=instance, details=_summary(instance)
        )
        instance.delete()
