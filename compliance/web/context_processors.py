"""Template context shared by every page: the current tenant, role and what it allows."""

from django.conf import settings

from compliance.tenancy.models import Role


def tenant(request):
    """Return the tenant set by ``TenantRoleMixin``, or empty values outside tenant pages."""
    membership = getattr(request, "membership", None)
    role = membership.role if membership else None
    current_tenant = getattr(request, "tenant", None)
    return {
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
