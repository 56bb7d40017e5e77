"""Controls and tenant rules over the API.

Everyone reads the shipped controls and their own tenant's controls and rules.
Officers and admins create, update and delete their tenant's own controls and
rules; shipped controls are read-only, and another tenant's are a 404.
Validation is the models' ``full_clean``, the same that the pages run.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers

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
from compliance.catalog.filters import ControlFilter, TenantRuleFilter
from compliance.catalog.models import (
    Control,
    Regulation,
    Requirement,
    Severity,
    TenantRule,
)
from compliance.inventory.models import EntityType
from compliance.tenancy.models import Role

WRITE = {"POST": Role.OFFICER, "PATCH": Role.OFFICER, "DELETE": Role.OFFICER}


def full_clean(instance, exclude=()):
    """Run the model's validation and raise its errors as a DRF ``ValidationError``."""
    try:
        instance.full_clean(exclude=list(exclude))
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.message_dict) from error


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }


class ControlSerializer(StrictModelSerializer):
    regulation = CaseInsensitiveChoiceField(choices=Regulation.values)
    requirement = CaseInsensitiveChoiceField(
        choices=["", *Requirement.values], required=False, help_text="HIPAA only, may be empty."
    )
    shipped = serializers.BooleanField(
        source="is_shipped",
        read_only=True,
        help_text="True for a control of the bundled catalog, false for your tenant's own.",
    )

    class Meta:
        model = Control
        fields = [
            "id",
            "regulation",
            "control_id",
            "title",
            "group",
            "guidance",
            "requirement",
            "shipped",
        ]
        read_only_fields = ["id", "shipped"]
        extra_kwargs = {
            "control_id": {
                "help_text": "In the regulation's canonical form, such as CC9.4 or A.8.40; "
                "other spellings are rewritten."
            }
        }

    def validate_regulation(self, value):
        if self.instance is not None and value != self.instance.regulation:
            raise serializers.ValidationError(
                "A control's regulation cannot change; create a control in the other regulation."
            )
        return value

    def validate(self, attrs):
        control = self.instance or Control(tenant=self.context["tenant"], catalog_version="tenant")
        for name, value in attrs.items():
            setattr(control, name, value)
        full_clean(control)
        # clean() writes the control ID in canonical form; keep that spelling.
        attrs["control_id"] = control.control_id
        attrs["title"] = control.title
        return attrs


class TenantRuleSerializer(StrictModelSerializer):
    regulation = CaseInsensitiveChoiceField(choices=Regulation.values)
    control_id = StrictCharField(
        help_text="The control the rule evidences, shipped or your own, in any spelling."
    )
    severity = CaseInsensitiveChoiceField(choices=Severity.choices, required=False)
    entity_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EntityType.choices),
        required=False,
        help_text="The entity types the rule applies to; all types when left out.",
    )
    facts = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The fact paths the expression reads, derived from the expression.",
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = TenantRule
        fields = [
            "id",
            "regulation",
            "control_id",
            "title",
            "severity",
            "entity_types",
            "expression",
            "facts",
            "remediation",
            "enabled",
            "created_by",
            "updated_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "facts", "created_by", "updated_by", "created_at", "updated_at"]
        extra_kwargs = {
            "expression": {
                "help_text": "A CEL expression over facts of the vocabulary that returns a boolean."
            },
            "remediation": {"help_text": "What to do when the rule fails."},
        }

    def to_representation(self, instance):
        body = super().to_representation(instance)
        body["control_id"] = instance.control.control_id
        return body

    def validate(self, attrs):
        tenant = self.context["tenant"]
        rule = self.instance or TenantRule(tenant=tenant)
        raw_control_id = attrs.pop("control_id", None)
        for name, value in attrs.items():
            setattr(rule, name, value)

        if raw_control_id is not None or "regulation" in attrs:
            raw = raw_control_id if raw_control_id is not None else rule.control.control_id
            try:
                rule.control = Control.objects.visible_to(tenant).find(rule.regulation, raw)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.message_dict) from error
        full_clean(rule, exclude=["tenant", "created_by", "updated_by"])
        attrs["control"] = rule.control
        attrs["title"] = rule.title
        attrs["facts"] = rule.facts
        return attrs


def _parse_control_pk(raw):
    if not raw.isdigit():
        raise exceptions.NotFound()
    return int(raw)


class TenantControls:
    serializer_class = ControlSerializer
    pagination_class = StrictLimitOffsetPagination
    filter_backends = [StrictFilterBackend]
    filterset_class = ControlFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Control.objects.none()
        return Control.objects.visible_to(self.request.tenant).order_by(
            "regulation", "tenant_id", "sort_key", "control_id", "id"
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "tenant": getattr(self.request, "tenant", None)}


class ControlListView(TenantControls, generics.ListCreateAPIView):
    """List the shipped controls and your own; create one of your own."""

    required_roles = {**READ_ROLES, **WRITE}

    def perform_create(self, serializer):
        control = serializer.save(tenant=self.request.tenant, catalog_version="tenant")
        record_request_event(
            self.request, AuditAction.CREATE, target=control, details=control.audit_details()
        )


@extend_schema(methods=["PUT"], exclude=True)
class ControlDetailView(TenantControls, generics.RetrieveUpdateDestroyAPIView):
    """Read a control; update or delete one of your own. Shipped controls are read-only."""

    required_roles = {**READ_ROLES, **WRITE}
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_object(self):
        control = get_object_or_404(
            self.get_queryset(), pk=_parse_control_pk(self.kwargs["control_pk"])
        )
        if self.request.method not in READ_ROLES and control.is_shipped:
            raise exceptions.PermissionDenied(
                "Shipped controls are read-only; create a control of your own instead."
            )
        return control

    @extend_schema(
        responses={
            204: None,
            403: OpenApiResponse(description="The control is shipped, or the role is too low."),
        },
        description="Delete one of your own controls together with the rules attached to it.",
    )
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)

    def perform_update(self, serializer):
        control = serializer.save()
        record_request_event(
            self.request,
            AuditAction.UPDATE,
            target=control,
            details={**control.audit_details(), "fields": sorted(serializer.validated_data)},
        )

    def perform_destroy(self, instance):
        details = {**instance.audit_details(), "rules": instance.tenant_rules.count()}
        record_request_event(self.request, AuditAction.DELETE, target=instance, details=details)
        instance.delete()


class TenantRules:
    serializer_class = TenantRuleSerializer
    pagination_class = StrictLimitOffsetPagination
    filter_backends = [StrictFilterBackend]
    filterset_class = TenantRuleFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return TenantRule.objects.none()
        return (
            TenantRule.objects.filter(tenant=self.request.tenant)
            .select_related("control", "created_by", "updated_by")
            .order_by("-created_at", "-id")
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "tenant": getattr(self.request, "tenant", None)}

    def get_object(self):
        rule_id = parse_uuid(self.kwargs["rule_id"], "rule_id")
        return get_object_or_404(self.get_queryset(), pk=rule_id)


class RuleListView(TenantRules, generics.ListCreateAPIView):
    """List your tenant's rules; create one."""

    required_roles = {**READ_ROLES, **WRITE}

    def perform_create(self, serializer):
        user = getattr(self.request.user, "user", None)
        rule = serializer.save(tenant=self.request.tenant, created_by=user, updated_by=user)
        record_request_event(
            self.request, AuditAction.CREATE, target=rule, details=rule.audit_details()
        )


@extend_schema(methods=["PUT"], exclude=True)
class RuleDetailView(TenantRules, generics.RetrieveUpdateDestroyAPIView):
    """Read, update or delete one of your tenant's rules."""

    required_roles = {**READ_ROLES, **WRITE}
    http_method_names = ["get", "patch", "delete", "head", "options"]

    @extend_schema(responses={204: None})
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)

    def perform_update(self, serializer):
        rule = serializer.save(updated_by=getattr(self.request.user, "user", None))
        fields = sorted(set(serializer.validated_data) - {"facts"})
        record_request_event(
            self.request,
            AuditAction.UPDATE,
            target=rule,
            details={**rule.audit_details(), "fields": fields},
        )

    def perform_destroy(self, instance):
        record_request_event(
            self.request, AuditAction.DELETE, target=instance, details=instance.audit_details()
        )
        instance.delete()
