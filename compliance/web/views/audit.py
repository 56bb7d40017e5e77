"""The audit trail page of tenant admins: events newest first, filtered and paginated."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views import View

from compliance.audit.filters import AuditEventFilter
from compliance.audit.models import AuditAction, AuditEvent
from compliance.tenancy.models import Role
from compliance.web.access import TenantRoleMixin

EVENTS_PER_PAGE = 50
FILTER_FIELDS = ("action", "actor", "outcome", "date_from", "date_to")

# Actions that the background worker records without an actor. The page names
# the worker as their actor. Other events without one, such as a failed
# login, keep "Unknown".
WORKER_ACTIONS = (AuditAction.PDF_RENDERED,)


class AuditEventListView(TenantRoleMixin, View):
    """List the tenant's audit events, with the filters and the page number kept in the URL.

    Dates are whole days in the tenant's time zone, the zone the page shows
    times in. Invalid filters list no events and show their errors instead.
    """

    required_role = Role.ADMIN

    def get(self, request):
        events = AuditEvent.objects.for_tenant(request.tenant).select_related("actor_key")
        filterset = AuditEventFilter(
            request.GET or None, queryset=events, time_zone=request.tenant.zone
        )
        invalid = filterset.is_bound and not filterset.is_valid()
        events = events.none() if invalid else filterset.qs
        events = events.order_by("-occurred_at", "-id")

        page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
        is_filtered = any(request.GET.get(name) for name in FILTER_FIELDS)
        context = {
            "filter_form": filterset.form,
            "page": page,
            "is_filtered": is_filtered,
            "worker_actions": WORKER_ACTIONS,
        }
        return render(request, "web/audit/list.html", context)
