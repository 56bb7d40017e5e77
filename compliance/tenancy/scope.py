"""The part of a tenant that a caller may see: chosen entities, regulations and a period.

An admin may limit an auditor's membership to some entities, some
regulations and a period of days (see ``Membership``). The page access check
and the API permission compute the caller's ``AccessScope`` once per request
and attach it to ``request.tenant``. The ``for_tenant`` queryset methods of
entities, checks, findings and reports read it from there, so every page,
API response and export that starts its query from ``request.tenant``
returns only what lies within the scope. Another tenant's object and an
object outside the scope are both a 404.

Only auditors are limited. Officers, admins and API keys always get
``UNLIMITED``, and changing an auditor's role clears the scope fields
(``clear_scope``), so a later change back to auditor starts unlimited
instead of reviving a forgotten limit. API keys are issued by admins only,
so no key can see more than the admin who issued it.
"""

import datetime as dt
from dataclasses import dataclass

from django.utils import dateformat

from compliance.catalog.models import Regulation
from compliance.tenancy.models import Role

SCOPE_ATTRIBUTE = "access_scope"


@dataclass(frozen=True)
class AccessScope:
    """Entity ids, regulation values and local dates a caller may see. ``None`` limits nothing."""

    entity_ids: frozenset | None = None
    regulations: frozenset | None = None
    start: dt.date | None = None
    end: dt.date | None = None

    @property
    def is_limited(self):
        return self != UNLIMITED

    def allows_regulation(self, regulation):
        return self.regulations is None or str(regulation) in self.regulations

    def time_bounds(self, zone):
        """Return the aware datetimes ``[start of start, start of the day after end)``.

        Either bound is ``None`` when that side of the period is open.
        """
        lower = upper = None
        if self.start is not None:
            lower = dt.datetime.combine(self.start, dt.time.min, tzinfo=zone)
        if self.end is not None:
            upper = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
        return lower, upper


UNLIMITED = AccessScope()


def membership_scope(membership):
    """Return the ``AccessScope`` of a membership: its scope fields for an auditor, else none.

    Reads the chosen entities in one query, and only for an auditor. A
    membership annotated with ``scope_entity_count`` 0 skips that query.
    """
    if membership.role != Role.AUDITOR:
        return UNLIMITED

    entity_ids = frozenset()
    if getattr(membership, "scope_entity_count", None) != 0:
        entity_ids = frozenset(membership.scope_entities.values_list("pk", flat=True))
    regulations = frozenset(membership.scope_regulations or [])
    return AccessScope(
        entity_ids=entity_ids or None,
        regulations=regulations or None,
        start=membership.scope_start,
        end=membership.scope_end,
    )


def attach_scope(tenant, scope):
    """Store ``scope`` on this ``tenant`` instance and return the tenant."""
    setattr(tenant, SCOPE_ATTRIBUTE, scope)
    return tenant


def scope_of(tenant):
    """Return the scope attached to ``tenant``, or ``UNLIMITED`` when none was attached.

    A tenant loaded outside a request (a command, the worker) has none, and
    those run on behalf of the whole tenant.
    """
    return getattr(tenant, SCOPE_ATTRIBUTE, UNLIMITED)


def visible_regulations(tenant):
    """Return the regulations that the scope on ``tenant`` lets the caller see, in catalog order."""
    scope = scope_of(tenant)
    return [regulation for regulation in Regulation if scope.allows_regulation(regulation)]


def within_entities(queryset, tenant, field="pk"):
    """Filter ``queryset`` to the scope's entities; ``field`` names the entity id."""
    scope = scope_of(tenant)
    if scope.entity_ids is None:
        return queryset
    return queryset.filter(**{f"{field}__in": scope.entity_ids})


def within_scope(queryset, tenant, time_field):
    """Filter records of an entity and regulation, timed by ``time_field``, to the scope.

    For checks and findings: the entity and the regulation must be chosen,
    and ``time_field`` must fall within the period's local days.
    """
    scope = scope_of(tenant)
    queryset = within_entities(queryset, tenant, field="entity_id")
    if scope.regulations is not None:
        queryset = queryset.filter(regulation__in=scope.regulations)

    lower, upper = scope.time_bounds(tenant.zone)
    if lower is not None:
        queryset = queryset.filter(**{f"{time_field}__gte": lower})
    if upper is not None:
        queryset = queryset.filter(**{f"{time_field}__lt": upper})
    return queryset


def reports_within_scope(queryset, tenant):
    """Filter reports to those whose entity and regulation are chosen and whose period fits.

    A report that starts before the scope's start or ends after its end is
    hidden whole, because its numbers cover days outside the scope.
    """
    scope = scope_of(tenant)
    queryset = within_entities(queryset, tenant, field="entity_id")
    if scope.regulations is not None:
        queryset = queryset.filter(regulation__in=scope.regulations)
    if scope.start is not None:
        queryset = queryset.filter(period_start__gte=scope.start)
    if scope.end is not None:
        queryset = queryset.filter(period_end__lte=scope.end)
    return queryset


def clear_scope(membership):
    """Remove every limit from ``membership`` and return whether it had any.

    The caller saves nothing else: this writes the fields and the entity links.
    """
    had_scope = bool(
        membership.scope_regulations
        or membership.scope_start
        or membership.scope_end
        or membership.scope_entities.exists()
    )
    if had_scope:
        membership.scope_entities.clear()
        membership.scope_regulations = []
        membership.scope_start = None
        membership.scope_end = None
        membership.save(update_fields=["scope_regulations", "scope_start", "scope_end"])
    return had_scope


def describe_scope(scope, entity_names=()):
    """Return what ``scope`` limits as a phrase for the banner and the member pages.

    ``entity_names`` are the names of the chosen entities, in display order.
    Regulations are named by their labels in catalog order, and the days as
    "1 Sep 2026", for example "the entity Claims triage agent; the regulations
    SOC 2 and HIPAA Security Rule; the days from 1 Sep 2026 to 29 Nov 2026".
    """
    parts = []
    if scope.entity_ids is not None:
        noun = "entity" if len(entity_names) == 1 else "entities"
        parts.append(f"the {noun} {join_words(entity_names)}")
    if scope.regulations is not None:
        labels = [
            regulation.label for regulation in Regulation if scope.allows_regulation(regulation)
        ]
        noun = "regulation" if len(labels) == 1 else "regulations"
        parts.append(f"the {noun} {join_words(labels)}")
    if scope.start is not None and scope.end is not None:
        parts.append(f"the days from {readable_date(scope.start)} to {readable_date(scope.end)}")
    elif scope.start is not None:
        parts.append(f"the days from {readable_date(scope.start)}")
    elif scope.end is not None:
        parts.append(f"the days up to {readable_date(scope.end)}")
    # Semicolons, because the lists inside the parts already use "and".
    return "; ".join(parts)


def readable_date(day):
    """Return ``day`` as "1 Sep 2026", in the active language's month names."""
    return dateformat.format(day, "j M Y")


def join_words(words):
    """Join ``words`` as "a", "a and b" or "a, b and c"."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
