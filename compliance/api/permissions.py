"""Tenant resolution and role checks for API requests."""

from rest_framework import exceptions, permissions

from compliance.keys.jwt import jwt_settings
from compliance.tenancy.models import Role
from compliance.tenancy.scope import attach_scope


class HasTenantRole(permissions.BasePermission):
    """Allow a request when its credential's role covers the view's required role.

    Views declare ``required_roles``, a map from HTTP method to the least role
    allowed; methods not in the map need an admin. An ``X-Tenant-ID`` header,
    optional with an API key, must name the key's tenant by UUID or slug.
    ``request.tenant`` carries the caller's access scope, which the
    ``for_tenant`` querysets apply.
    """

    def has_permission(self, request, view):
        principal = request.user
        if principal is None or not getattr(principal, "is_authenticated", False):
            raise exceptions.NotAuthenticated(_missing_credential_message(request))

        requested = request.headers.get("X-Tenant-ID")
        tenant = principal.tenant
        if requested is not None and requested.strip() not in {str(tenant.pk), tenant.slug}:
            raise exceptions.PermissionDenied("X-Tenant-ID does not match the API key's tenant.")
        request.tenant = attach_scope(tenant, principal.scope)

        if not _handles(view, request.method):
            return True  # The view returns 405 Method Not Allowed.
        required = getattr(view, "required_roles", {}).get(request.method, Role.ADMIN)
        if not Role.allows(principal.role, required):
            raise exceptions.PermissionDenied(
                f"This operation needs the {Role(required).label.lower()} role or higher."
            )
        return True


def _missing_credential_message(request):
    """Say what to send, and why a bearer token was not read when bearer tokens are off."""
    bearer = request.headers.get("Authorization", "").lower().startswith("bearer ")
    if bearer and jwt_settings() is None:
        return (
            "Bearer tokens are not enabled on this server. Send an API key in the X-API-Key header."
        )
    return "Send an API key in the X-API-Key header or a token as Authorization: Bearer."


def _handles(view, method):
    name = method.lower()
    return name in view.http_method_names and hasattr(view, name)


# Reading needs an auditor, the least role; views add their write methods.
READ_ROLES = {"GET": Role.AUDITOR, "HEAD": Role.AUDITOR, "OPTIONS": Role.AUDITOR}
