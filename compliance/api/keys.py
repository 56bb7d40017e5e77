"""API keys over the API: admins list, create, read and revoke their tenant's keys."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from compliance.api.pagination import StrictLimitOffsetPagination
from compliance.api.params import PAGE_PARAMETERS, parse_uuid, validate_query
from compliance.api.serializers import (
    CaseInsensitiveChoiceField,
    StrictCharField,
    StrictFieldsMixin,
)
from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.keys.models import ApiKey
from compliance.tenancy.models import Role

ADMIN = {method: Role.ADMIN for method in ("GET", "HEAD", "OPTIONS", "POST", "DELETE")}


def key_details(api_key):
    """Return what the audit trail records about a key: never its secret."""
    return {
        "name": api_key.name,
        "key_prefix": api_key.display_prefix,
        "role": api_key.role,
        "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
    }


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(
        source="display_prefix", read_only=True, help_text="The visible start of the key."
    )
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields

    def get_status(self, api_key) -> str:
        if api_key.revoked_at is not None:
            return "revoked"
        if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            return "expired"
        return "active"


class ApiKeyCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = StrictCharField(max_length=100)
    role = CaseInsensitiveChoiceField(choices=Role.values)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("May not be blank.")
        return value.strip()

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The whole key. It is shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyListView(generics.ListAPIView):
    required_roles = ADMIN
    serializer_class = ApiKeySerializer
    pagination_class = StrictLimitOffsetPagination

    def get_queryset(self):
        return ApiKey.objects.filter(tenant=self.request.tenant).order_by("-created_at", "-id")

    def list(self, request, *args, **kwargs):
        validate_query(request.query_params, set(PAGE_PARAMETERS))
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        api_key, plaintext = ApiKey.issue(
            tenant=request.tenant, created_by=request.user.user, **serializer.validated_data
        )
        record_request_event(
            request, AuditAction.KEY_CREATED, target=api_key, details=key_details(api_key)
        )
        api_key.key = plaintext
        body = ApiKeyCreatedSerializer(api_key).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class ApiKeyDetailView(generics.RetrieveDestroyAPIView):
    required_roles = ADMIN
    serializer_class = ApiKeySerializer

    def get_object(self):
        key_id = parse_uuid(self.kwargs["key_id"], "key_id")
        return get_object_or_404(ApiKey.objects.filter(tenant=self.request.tenant), pk=key_id)

    @extend_schema(responses={204: None}, description="Revoke the key; it stops working at once.")
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)

    def perform_destroy(self, instance):
        if instance.revoked_at is not None:
            return
        instance.revoke()
        record_request_event(
            self.request, AuditAction.KEY_REVOKED, target=instance, details=key_details(instance)
        )
