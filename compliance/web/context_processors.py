"""Template context shared by every page: the current tenant, role and what it allows."""

from django.conf import settings

from compliance.inventory.models import Entity
from compliance.tenancy.models import Role
from compliance.tenancy.scope import describe_scope, scope_of


def tenant(request):
    """Return the tenant set by ``TenantRoleMixin``, or empty values outside tenant pages."""
    membership = getattr(request, "membership", None)
    role = membership.role if membership else None
    current_tenant = getattr(request, "tenant", None)
    return {
        "scope_banner": scope_banner(current_tenant),
        "product_name": settings.PRODUCT_NAME,
        "current_tenant": current_tenant,
        # Tenant pages show dates and times in the tenant's zone, and other pages in TIME_ZONE.
        "display_time_zone": current_tenant.time_zone if current_tenant else settings.TIME_ZONE,
        "current_membership": membership,
        "tenant_memberships": getattr(request, "tenant_memberships", []),
        "can_generate_reports": role is not None and Role.allows(role, Role.OFFICER),
        "can_manage_api_keys": role is not None and Role.allows(role, Role.ADMIN),
        "can_view_audit_trail": role is not None and Role.allows(role, Role.ADMIN),
    }


def scope_banner(current_tenant):
    """Return what the caller's access scope limits in words, or ``""`` when it limits nothing.

    Reads the chosen entities' names in one query, and only for a limited scope.
    """
    if current_tenant is None:
        return ""
    scope = scope_of(current_tenant)
    if not scope.is_limited:
        return ""
    names = []
    if scope.entity_ids is not None:
        entities = Entity.objects.filter(tenant=current_tenant, pk__in=scope.entity_ids)
        names = list(entities.order_by("name", "id").values_list("name", flat=True))
    return describe_scope(scope, names)
