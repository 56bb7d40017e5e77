"""Entity pages: the filtered list, the detail with history and facts, and running a check."""

import json
import logging

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views import View

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.catalog.models import Control, Regulation
from compliance.checks.automated import recent_or_new_check
from compliance.checks.models import FindingStatus
from compliance.checks.rules import RuleFileError
from compliance.inventory.models import Entity
from compliance.reports.charts import trend_chart_svg
from compliance.tenancy.models import Role
from compliance.tenancy.scope import visible_regulations
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.filters import EntityPageFilter
from compliance.web.forms import NoColonLabelsMixin
from compliance.web.listing import Sorting
from compliance.web.posture import entity_trends, latest_checks, latest_findings

logger = logging.getLogger(__name__)

ENTITIES_PER_PAGE = 25
HISTORY_DAYS = 90
HISTORY_BUCKET_DAYS = 7
ENTITY_SORTING = Sorting(
    {
        "name": ("Name", ("name", "id")),
        "type": ("Type", ("entity_type", "name", "id")),
        "created": ("Created", ("created_at", "id")),
    },
    default="name",
)


class RunCheckForm(NoColonLabelsMixin, forms.Form):
    """The regulation of an automated check that an officer starts from the entity page."""

    regulation = forms.ChoiceField(choices=Regulation.choices)


def flatten_facts(attributes, prefix=""):
    """Return ``(dotted key, display value)`` pairs of nested attributes, sorted by key.

    Keys use the dotted form that the rules read (``logging.retention_days``).
    Strings show as they are and every other value as JSON, so ``true`` and
    ``["a", "b"]`` read as the rules see them. An empty object shows as ``{}``.
    """
    if not isinstance(attributes, dict):
        return [(prefix or "attributes", json.dumps(attributes))]

    pairs = []
    for key, value in attributes.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            pairs.extend(flatten_facts(value, dotted))
        elif isinstance(value, str):
            pairs.append((dotted, value))
        else:
            pairs.append((dotted, json.dumps(value, ensure_ascii=False)))
    return sorted(pairs)


def badge_rows(entities, checks_by_entity):
    """Pair each entity with its latest check per regulation, in regulation order."""
    rows = []
    for entity in entities:
        checks = checks_by_entity.get(entity.pk, {})
        latest = [
            (regulation, checks[regulation.value])
            for regulation in Regulation
            if regulation.value in checks
        ]
        rows.append({"entity": entity, "latest": latest})
    return rows


def history_rows(trends, regulations=Regulation):
    """Return one row per regulation: its chart, or ``None`` when it has no evidence."""
    rows = []
    for regulation in regulations:
        trend = trends[regulation.value]
        scored = [point for point in trend["points"] if point["score"] is not None]
        chart = None
        if scored:
            chart = trend_chart_svg(
                trend,
                width=520,
                height=180,
                title=f"{regulation.label} compliance score, last {HISTORY_DAYS} days",
                id_prefix=f"trend-{regulation.value.lower()}",
            )
        rows.append(
            {
                "regulation": regulation,
                "chart": chart,
                "latest_score": scored[-1]["score"] if scored else None,
            }
        )
    return rows


def open_finding_rows(findings):
    """Return the failing latest findings, highest severity first, with their control titles."""
    failing = [finding for finding in findings if finding.status == FindingStatus.FAIL]
    titles = control_titles(failing)
    severity_order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    failing.sort(
        key=lambda finding: (
            severity_order.get(finding.severity, len(severity_order)),
            finding.regulation,
            finding.control_id,
        )
    )
    return [
        {"finding": finding, "control_title": titles.get((finding.regulation, finding.control_id))}
        for finding in failing
    ]


def control_titles(findings):
    """Return ``{(regulation, control_id): title}`` for the findings' controls, in one query."""
    if not findings:
        return {}
    control_ids = {finding.control_id for finding in findings}
    tenant_id = findings[0].tenant_id
    controls = (
        Control.objects.visible_to(tenant_id)
        .filter(control_id__in=control_ids)
        .values_list("regulation", "control_id", "title")
    )
    return {(regulation, control_id): title for regulation, control_id, title in controls}


class EntityListView(TenantRoleMixin, View):
    """List the tenant's entities, filtered by ``EntityFilter`` and sorted on the server.

    Filters, sort and page stay in the URL. An invalid filter lists nothing
    and shows its error, never the unfiltered list.
    """

    def get(self, request):
        entities = Entity.objects.for_tenant(request.tenant)
        filterset = EntityPageFilter(request.GET or None, queryset=entities)
        invalid = filterset.is_bound and not filterset.is_valid()
        entities = entities.none() if invalid else filterset.qs

        sort = request.GET.get("sort")
        entities = entities.order_by(*ENTITY_SORTING.order_by(sort))
        entities = entities.only("id", "name", "entity_type", "owner", "created_at", "tenant_id")
        page = Paginator(entities, ENTITIES_PER_PAGE).get_page(request.GET.get("page"))
        checks = latest_checks(request.tenant, [entity.pk for entity in page.object_list])

        context = {
            "filter_form": filterset.form,
            "page": page,
            "rows": badge_rows(page.object_list, checks),
            "is_filtered": filterset.is_filtered(),
            "sort": ENTITY_SORTING.value(sort),
            "sort_headers": ENTITY_SORTING.headers(sort),
            "sort_description": ENTITY_SORTING.describe(sort),
        }
        return render(request, "web/entities/list.html", context)


class EntityDetailView(TenantRoleMixin, View):
    """Show one entity: history per regulation, latest checks, open findings and facts."""

    def get(self, request, entity_id):
        entity = get_for_tenant(request, Entity.objects.select_related("tenant"), pk=entity_id)
        return render_detail(request, entity, RunCheckForm())


def render_detail(request, entity, form, status=200):
    trends = entity_trends(
        entity,
        request.tenant.today(),
        window_days=HISTORY_DAYS,
        bucket_days=HISTORY_BUCKET_DAYS,
    )
    checks = latest_checks(request.tenant, [entity.pk]).get(entity.pk, {})
    regulations = visible_regulations(request.tenant)
    history = history_rows(trends, regulations)
    context = {
        "entity": entity,
        "history_with_evidence": [row for row in history if row["chart"]],
        "history_without_evidence": [row["regulation"] for row in history if not row["chart"]],
        "history_days": HISTORY_DAYS,
        "has_checks": bool(checks),
        "latest_checks": [(regulation, checks.get(regulation.value)) for regulation in regulations],
        "open_findings": open_finding_rows(latest_findings(entity)),
        "facts": flatten_facts(entity.attributes),
        "run_check_form": form,
    }
    return render(request, "web/entities/detail.html", context, status=status)


class EntityRunCheckView(TenantRoleMixin, View):
    """Run the automated rules of one regulation on the entity and open the check.

    A check of the same rules from the last 24 hours is reused, as in the API,
    so pressing the button twice stores one check.
    """

    required_role = Role.OFFICER

    def post(self, request, entity_id):
        entity = get_for_tenant(request, Entity.objects.select_related("tenant"), pk=entity_id)
        form = RunCheckForm(request.POST)
        if not form.is_valid():
            return render_detail(request, entity, form, status=400)

        regulation = Regulation(form.cleaned_data["regulation"])
        try:
            check, reused = recent_or_new_check(entity, regulation)
        except RuleFileError as error:
            logger.error(
                "automated %s check of entity %s failed, the rule files are invalid: %s",
                regulation,
                entity.pk,
                error,
            )
            messages.error(
                request,
                f"The {regulation.label} check could not run because its rule files are "
                "invalid. Tell your administrator; the server log names the file.",
            )
            return redirect("web:entity-detail", entity_id=entity.pk)

        if reused:
            messages.info(
                request,
                f"This {regulation.label} check ran less than 24 hours ago with the same "
                "rules, so it is shown instead of a new one.",
            )
        else:
            record_request_event(
                request,
                AuditAction.CREATE,
                target=check,
                details={"entity_id": str(entity.pk), "regulation": check.regulation},
            )
            messages.success(request, f"The {regulation.label} check of {entity.name} ran.")
        return redirect("web:check-detail", check_id=check.pk)
