"""Server-side sorting of the list pages, with the sort kept in the ``sort`` URL parameter.

A sort value is a column key, with a leading ``-`` for descending order, for
example ``name`` or ``-created``. An unknown value falls back to the page's
default instead of failing, because sort links are often shared and edited.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SortColumn:
    """One sortable column header: its label, the link's sort value and its ``aria-sort``."""

    key: str
    label: str
    link_value: str
    aria_sort: str

    @property
    def is_sorted(self):
        return self.aria_sort != "none"


class Sorting:
    """The sort orders of a list page: ``{key: (label, ordering fields)}`` and a default.

    Each ordering must end in a unique field, so that pagination is stable.
    """

    def __init__(self, columns, default):
        if default.removeprefix("-") not in columns:
            raise ValueError(f"Default sort {default!r} is not one of {', '.join(columns)}.")
        self.columns = columns
        self.default = default

    def parse(self, raw):
        """Return ``(key, descending)`` for the ``sort`` parameter, or for the default."""
        raw = (raw or "").strip()
        if raw.removeprefix("-") not in self.columns:
            raw = self.default
        return raw.removeprefix("-"), raw.startswith("-")

    def order_by(self, raw):
        """Return the ``order_by`` fields of the sort parameter ``raw``."""
        key, descending = self.parse(raw)
        fields = self.columns[key][1]
        if not descending:
            return list(fields)
        return [field[1:] if field.startswith("-") else f"-{field}" for field in fields]

    def value(self, raw):
        key, descending = self.parse(raw)
        return f"-{key}" if descending else key

    def headers(self, raw):
        """Return ``{key: SortColumn}``, where the sorted column's link reverses its order."""
        current, descending = self.parse(raw)
        headers = []
        for key, (label, _) in self.columns.items():
            if key != current:
                headers.append(SortColumn(key, label, key, "none"))
                continue
            aria_sort = "descending" if descending else "ascending"
            link_value = key if descending else f"-{key}"
            headers.append(SortColumn(key, label, link_value, aria_sort))
        return {header.key: header for header in headers}

    def describe(self, raw):
        """Return the current order in words, such as ``by name, ascending``."""
        key, descending = self.parse(raw)
        label = self.columns[key][0].lower()
        return f"by {label}, {'descending' if descending else 'ascending'}"
