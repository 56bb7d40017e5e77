"""The overview page: the tenant's posture per regulation and what needs attention."""

import datetime as dt
import logging

from django.shortcuts import render
from django.views import View

from compliance.checks.models import Check
from compliance.inventory.models import Entity
from compliance.reports.models import Report
from compliance.web.access import TenantRoleMixin
from compliance.web.posture import tenant_posture
from compliance.web.sparkline import sparkline_svg

logger = logging.getLogger(__name__)

WINDOW_DAYS = 30
CHANGE_DAYS = 7
AT_RISK_LIMIT = 5
RECENT_LIMIT = 5
CHANGES_LIMIT = 15


def recent_checks(tenant):
    checks = Check.objects.for_tenant(tenant).select_related("entity")
    return list(checks.order_by("-created_at", "-id")[:RECENT_LIMIT])


def recent_reports(tenant):
    reports = Report.objects.for_tenant(tenant).select_related("entity").defer("findings")
    return list(reports.order_by("-created_at", "-id")[:RECENT_LIMIT])


def entity_names(tenant, entity_ids):
    """Return ``{entity id: Entity}`` for the entities the posture names, in one query."""
    if not entity_ids:
        return {}
    entities = Entity.objects.for_tenant(tenant).filter(pk__in=entity_ids).only("id", "name")
    return {entity.pk: entity for entity in entities}


def regulation_cards(posture):
    """Pair each regulation's posture with its sparkline, for the template."""
    return [
        {"posture": regulation, "sparkline": sparkline_svg(regulation.trend)}
        for regulation in posture.regulations
    ]


class OverviewView(TenantRoleMixin, View):
    """Show the last 30 days per regulation, the entities most at risk and recent activity.

    Every number comes from the daily control rollups of the window, read in
    one statement by ``compliance.web.posture``, so the page runs a fixed
    number of queries.
    """

    def get(self, request):
        tenant = request.tenant
        today = tenant.today()
        posture = tenant_posture(
            tenant,
            today,
            window_days=WINDOW_DAYS,
            change_days=CHANGE_DAYS,
            at_risk_limit=AT_RISK_LIMIT,
        )

        changes = posture.changes[:CHANGES_LIMIT]
        named_ids = {risk.entity_id for risk in posture.at_risk}
        named_ids |= {change.after.entity_id for change in changes}
        entities = entity_names(tenant, named_ids)

        context = {
            "cards": regulation_cards(posture),
            "without_evidence": [
                card.regulation for card in posture.regulations if not card.has_evidence
            ],
            "at_risk": [(entities.get(risk.entity_id), risk) for risk in posture.at_risk],
            "changes": [(entities.get(change.after.entity_id), change) for change in changes],
            "changes_total": len(posture.changes),
            "recent_checks": recent_checks(tenant),
            "recent_reports": recent_reports(tenant),
            "window_days": WINDOW_DAYS,
            "window_start": today - dt.timedelta(days=WINDOW_DAYS - 1),
            "today": today,
            "change_since": today - dt.timedelta(days=CHANGE_DAYS),
        }
        return render(request, "web/overview/overview.html", context)
