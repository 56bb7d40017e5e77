"""Tenant and role resolution for the server-rendered pages.

A page request acts for exactly one tenant: the user's only membership, or
the one picked with the tenant switcher and kept in the session. Every view
that shows or changes tenant data uses ``TenantRoleMixin``, so the tenant,
the role check and the per-tenant object lookup live in this one module.
"""

import logging

from django.contrib.auth.mixins import AccessMixin
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from compliance.audit.models import AuditAction, AuditOutcome
from compliance.audit.services import record_request_event
from compliance.tenancy.models import Membership, Role
from compliance.tenancy.scope import attach_scope, membership_scope

logger = logging.getLogger(__name__)

SESSION_TENANT_KEY = "web_tenant_id"


def memberships_of(user):
    """Return the user's memberships with their tenants, ordered by tenant name."""
    return list(
        Membership.objects.filter(user=user)
        .select_related("tenant")
        .annotate(scope_entity_count=Count("scope_entities"))
        .order_by("tenant__name", "tenant__id")
    )


def select_membership(memberships, chosen_tenant_id):
    """Return the membership for the chosen tenant, else the first one, else ``None``.

    A stale choice (the user has since lost that membership) falls back to the
    first tenant instead of failing, so removing a member never locks them out
    of their other tenants.
    """
    for membership in memberships:
        if str(membership.tenant_id) == chosen_tenant_id:
            return membership
    return memberships[0] if memberships else None


def switch_tenant(request, tenant_id):
    """Store ``tenant_id`` as the session's tenant and return the user's membership in it.

    Return ``None`` and leave the session unchanged if the user is not a member.
    """
    memberships = memberships_of(request.user)
    membership = next((m for m in memberships if str(m.tenant_id) == str(tenant_id)), None)
    if membership is not None:
        request.session[SESSION_TENANT_KEY] = str(membership.tenant_id)
    return membership


def get_for_tenant(request, queryset, **lookup):
    """Return the one object of the current tenant matching ``lookup``, or raise ``Http404``.

    Another tenant's object is a 404 too, so a page never reveals that it exists.
    A queryset with ``for_tenant`` also drops objects outside the caller's
    access scope, which are a 404 the same way. The object's ``tenant`` is
    set to ``request.tenant``, so helpers that start a query from it keep
    the scope.
    """
    if hasattr(queryset, "for_tenant"):
        queryset = queryset.for_tenant(request.tenant)
    else:
        queryset = queryset.filter(tenant=request.tenant)
    found = get_object_or_404(queryset, **lookup)
    if getattr(found, "tenant_id", None) == request.tenant.pk:
        found.tenant = request.tenant
    return found


def record_page_view(request, response):
    """Record a page an auditor read: a successful GET or HEAD, full page or fragment.

    Downloads are recorded by their own views, with what was downloaded.
    """
    if request.method not in ("GET", "HEAD") or response.status_code != 200:
        return
    if response.get("Content-Disposition", "").startswith("attachment"):
        return
    _record_page_event(request, AuditOutcome.SUCCESS, {})


def record_page_not_found(request):
    """Record an auditor's GET or HEAD of an object that is missing or outside their scope.

    The event is a failed page view with status 404. It does not say which
    of the two it was, just as the response does not.
    """
    if request.method in ("GET", "HEAD"):
        _record_page_event(request, AuditOutcome.FAILURE, {"status": 404})


def _record_page_event(request, outcome, extra_details):
    details = {"path": request.path, "query": request.GET.urlencode()[:1000], **extra_details}
    record_request_event(
        request,
        AuditAction.PAGE_VIEWED,
        target_type="page",
        target_id=request.path[:64],
        outcome=outcome,
        details=details,
    )


class TenantRoleMixin(AccessMixin):
    """Require a logged-in member of a tenant whose role includes ``required_role``.

    Anonymous users are redirected to the login page. A user without any
    membership, or whose role is too low, gets a 403 page saying why. On
    success the view finds ``request.tenant``, ``request.membership`` and
    ``request.tenant_memberships`` set, with the member's access scope on
    ``request.tenant`` (see ``compliance.tenancy.scope``).
    """

    required_role = Role.AUDITOR

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()

        memberships = memberships_of(request.user)
        membership = select_membership(memberships, request.session.get(SESSION_TENANT_KEY))
        request.tenant_memberships = memberships
        if membership is None:
            logger.info("user %s has no tenant membership", request.user.pk)
            return render(request, "web/no_tenant.html", status=403)

        request.tenant = attach_scope(membership.tenant, membership_scope(membership))
        request.membership = membership
        if not Role.allows(membership.role, self.required_role):
            return self.reject_role(request, membership)

        if membership.role != Role.AUDITOR:
            return super().dispatch(request, *args, **kwargs)

        # Auditors' reads are audited, including requests for objects they cannot see.
        try:
            response = super().dispatch(request, *args, **kwargs)
        except Http404:
            record_page_not_found(request)
            raise
        record_page_view(request, response)
        return response

    def reject_role(self, request, membership):
        logger.info(
            "user %s with role %s denied %s in tenant %s",
            request.user.pk,
            membership.role,
            request.path,
            membership.tenant_id,
        )
        context = {"required_role": Role(self.required_role)}
        return render(request, "web/forbidden.html", context, status=403)
