"""The order that puts the latest finding of a control first, for pages and filters.

The newest observation wins. At the same instant the most conservative
status wins, then the highest severity, then the newest row, as in
``compliance.reports.aggregation``.
"""

from django.db.models import Case, F, IntegerField, Value, When

from compliance.reports.aggregation import SEVERITY_ORDER, STATUS_PRECEDENCE


def rank(field, ordered_values):
    """Return an expression that maps ``field`` to its position in ``ordered_values``."""
    whens = [
        When(**{field: value}, then=Value(index)) for index, value in enumerate(ordered_values)
    ]
    return Case(*whens, default=Value(len(ordered_values)), output_field=IntegerField())


def latest_first():
    """Return the ordering of findings that puts a control's latest finding first."""
    return [
        F("observed_at").desc(),
        rank("status", STATUS_PRECEDENCE).asc(),
        rank("severity", SEVERITY_ORDER).asc(),
        F("id").desc(),
    ]
