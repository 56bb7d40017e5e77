"""Controls pages: each regulation's catalog, the automated rules and the tenant's coverage.

Coverage counts, for each control, the tenant's entities by the status of
their latest finding of that control in the last ``COVERAGE_DAYS`` days. It
reads every check of the tenant: automated, imported, sent through the API,
and the generated demo history. Findings observed at the same instant are
ranked as in report aggregation, so a control shows the same status here as
in a report of the same entity.
"""

import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from compliance.catalog.models import Control, Regulation, TenantRule
from compliance.checks.models import DailyControlRollup, Finding, FindingStatus
from compliance.checks.rules import RuleFileError, rule_set
from compliance.inventory.models import EntityType
from compliance.tenancy.models import Role
from compliance.tenancy.scope import scope_of, visible_regulations, within_entities
from compliance.web.access import TenantRoleMixin
from compliance.web.latest import latest_first

logger = logging.getLogger(__name__)

COVERAGE_DAYS = 90
# The order of a control's coverage badges.
COVERAGE_STATUSES = [
    FindingStatus.PASS,
    FindingStatus.FAIL,
    FindingStatus.NOT_ASSESSED,
    FindingStatus.NOT_APPLICABLE,
]


@dataclass(frozen=True)
class RegulationSummary:
    """One row of the list page: the size of a regulation's catalog and what covers it."""

    regulation: Regulation
    controls: int
    with_rule: int
    with_evidence: int


@dataclass(frozen=True)
class CoverageCount:
    """The number of entities whose latest finding of a control has ``status``."""

    status: str
    count: int


@dataclass(frozen=True)
class ControlRow:
    """One row of the detail page: a control, its shipped and tenant rules, and its coverage."""

    control: Control
    rule: object
    rule_applies_to: str
    coverage: list
    tenant_rules: list

    @property
    def has_rule(self):
        return self.rule is not None or any(rule.enabled for rule in self.tenant_rules)


def coverage_start(tenant):
    """Return the first local day of the coverage window, ``COVERAGE_DAYS`` days before now.

    The window starts at the beginning of that day, so the check list's
    ``date_from`` filter with the same day selects the same findings.
    """
    return (timezone.now() - dt.timedelta(days=COVERAGE_DAYS)).astimezone(tenant.zone).date()


def start_of_day(tenant, day):
    return dt.datetime.combine(day, dt.time.min, tzinfo=tenant.zone)


def latest_statuses(tenant, regulation, since):
    """Return ``{control_id: Counter(status: entities)}`` for the tenant, in one query.

    Each (entity, control) pair counts once, with the status of its latest
    finding observed at or after ``since``. Ties at the same instant go to
    the most conservative status, then the highest severity, then the newest
    row, as in ``compliance.reports.aggregation``.
    """
    ranked = (
        Finding.objects.for_tenant(tenant)
        .filter(regulation=regulation, observed_at__gte=since)
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("entity_id"), F("control_id")],
                order_by=latest_first(),
            )
        )
        .filter(position=1)
        .order_by()
    )

    coverage = defaultdict(Counter)
    for control_id, status in ranked.values_list("control_id", "status"):
        coverage[control_id][status] += 1
    return coverage


def evidenced_controls(tenant, since):
    """Return ``{regulation value: set of control IDs}`` with a finding since ``since``'s day.

    Reads the daily control rollups through ``control_rollup_tenant_day_idx``
    instead of the findings, which no index serves by time. A day row counts
    whole, so a finding earlier on the local day of ``since`` counts too.
    """
    # The rollups have no for_tenant, so the caller's access scope is applied here.
    scope = scope_of(tenant)
    first_day = since.astimezone(tenant.zone).date()
    if scope.start is not None:
        first_day = max(first_day, scope.start)
    rows = DailyControlRollup.objects.filter(tenant=tenant, day__gte=first_day)
    if scope.end is not None:
        rows = rows.filter(day__lte=scope.end)
    if scope.regulations is not None:
        rows = rows.filter(regulation__in=scope.regulations)
    rows = within_entities(rows, tenant, field="entity_id")
    pairs = rows.order_by().values_list("regulation", "control_id").distinct()
    evidenced = defaultdict(set)
    for regulation, control_id in pairs:
        evidenced[regulation].add(control_id)
    return evidenced


def rules_by_control(regulation):
    """Return ``({control_id: Rule}, loaded)`` for ``regulation``.

    Invalid rule files are logged and give no rules, so the page still shows
    the catalog and the evidence.
    """
    try:
        rules = rule_set(regulation)
    except RuleFileError as error:
        logger.error(
            "controls page: %s rules not loaded, the rule files are invalid: %s", regulation, error
        )
        return {}, False
    return {control_id: compiled.rule for control_id, compiled in rules.by_control().items()}, True


def entity_types_label(rule):
    """Return the entity types a rule applies to, in the order of ``EntityType``."""
    labels = [label for value, label in EntityType.choices if value in rule.entity_types]
    return ", ".join(labels)


def coverage_counts(counter):
    """Return the non-zero ``CoverageCount`` entries of one control, in badge order."""
    return [
        CoverageCount(status=status.value, count=counter[status.value])
        for status in COVERAGE_STATUSES
        if counter[status.value]
    ]


def control_row(control, rules, coverage, tenant_rules=None):
    rule = rules.get(control.control_id)
    return ControlRow(
        control=control,
        rule=rule,
        rule_applies_to=entity_types_label(rule) if rule else "",
        coverage=coverage_counts(coverage.get(control.control_id, Counter())),
        tenant_rules=(tenant_rules or {}).get(control.pk, []),
    )


def parse_regulation(raw):
    """Return the ``Regulation`` whose value is exactly ``raw``, or raise ``Http404``."""
    if raw not in Regulation.values:
        raise Http404(f"Unknown regulation {raw!r}.")
    return Regulation(raw)


class ControlListView(TenantRoleMixin, View):
    """List the regulations with their catalog size, rule count and recent evidence."""

    def get(self, request):
        since = start_of_day(request.tenant, coverage_start(request.tenant))
        catalog = defaultdict(set)
        visible = Control.objects.visible_to(request.tenant)
        for regulation, control_id in visible.values_list("regulation", "control_id"):
            catalog[regulation].add(control_id)
        tenant_ruled = defaultdict(set)
        enabled_rules = TenantRule.objects.filter(tenant=request.tenant, enabled=True)
        for regulation, control_id in enabled_rules.values_list(
            "regulation", "control__control_id"
        ):
            tenant_ruled[regulation].add(control_id)
        evidenced = evidenced_controls(request.tenant, since)

        summaries, rules_missing = [], []
        for regulation in visible_regulations(request.tenant):
            rules, loaded = rules_by_control(regulation)
            if not loaded:
                rules_missing.append(regulation)
            controls = catalog[regulation.value]
            summaries.append(
                RegulationSummary(
                    regulation=regulation,
                    controls=len(controls),
                    with_rule=len(controls & (set(rules) | tenant_ruled[regulation.value])),
                    with_evidence=len(controls & evidenced[regulation.value]),
                )
            )

        context = {
            "summaries": summaries,
            "rules_missing": rules_missing,
            "coverage_days": COVERAGE_DAYS,
        }
        return render(request, "web/controls/list.html", context)


class ControlDetailView(TenantRoleMixin, View):
    """Show one regulation's controls in catalog order with rules and coverage.

    The tenant's own controls follow the shipped catalog. The page reads the
    controls, the tenant's rules and the coverage in one query each, whatever
    the number of controls. Officers and admins get links to add, edit and
    delete the tenant's controls and rules.
    """

    def get(self, request, regulation):
        regulation = parse_regulation(regulation)
        controls = list(
            Control.objects.visible_to(request.tenant)
            .filter(regulation=regulation)
            .order_by("sort_key", "control_id")
        )
        rules, rules_loaded = rules_by_control(regulation)
        own_rules = list(
            TenantRule.objects.filter(tenant=request.tenant, regulation=regulation)
            .select_related("control")
            .order_by("control__sort_key", "control__control_id", "created_at", "id")
        )
        rules_of_control = defaultdict(list)
        for rule in own_rules:
            rules_of_control[rule.control_id].append(rule)
        first_day = coverage_start(request.tenant)
        coverage = latest_statuses(
            request.tenant, regulation, start_of_day(request.tenant, first_day)
        )

        rows = [control_row(control, rules, coverage, rules_of_control) for control in controls]
        catalog_ids = {control.control_id for control in controls}
        context = {
            "regulation": regulation,
            "rows": rows,
            "own_controls": [control for control in controls if not control.is_shipped],
            "own_rules": own_rules,
            "can_edit": Role.allows(request.membership.role, Role.OFFICER),
            "rules_loaded": rules_loaded,
            "with_rule": sum(1 for row in rows if row.has_rule),
            "with_evidence": sum(1 for row in rows if row.coverage),
            "evidence_outside_catalog": sorted(set(coverage) - catalog_ids),
            "coverage_days": COVERAGE_DAYS,
            "coverage_start": first_day,
            "regulations": visible_regulations(request.tenant),
        }
        return render(request, "web/controls/detail.html", context)
