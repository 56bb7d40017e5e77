"""Load the bundled control catalogs into the ``Control`` table."""

import csv
from pathlib import Path

from django.db import transaction

from compliance.catalog.models import Control, Regulation

DATA_DIR = Path(__file__).resolve().parent / "data"
CATALOG_FILE = DATA_DIR / "controls.csv"
CATALOG_VERSION = "2026.12"


def read_catalog(path=CATALOG_FILE):
    """Yield ``(regulation, control_id, title, group)`` rows from a catalog CSV file."""
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            yield Regulation(row["regulation"]), row["control_id"], row["title"], row["group"]


@transaction.atomic
def sync_catalog(path=CATALOG_FILE):
    """Make the Control table equal the catalog file; return the number of rows changed.

    Shipped controls missing from the file are deleted. Tenants' own controls
    are never read, changed or deleted. Running it again with the same file
    changes nothing, so it is safe after every migration.
    """
    existing = {(c.regulation, c.control_id): c for c in Control.objects.shipped()}
    to_create, to_update, in_file = [], [], set()
    for position, (regulation, control_id, title, group) in enumerate(read_catalog(path)):
        in_file.add((regulation.value, control_id))
        control = existing.get((regulation.value, control_id))
        values = {
            "title": title,
            "group": group,
            "sort_key": position,
            "catalog_version": CATALOG_VERSION,
        }
        if control is None:
            to_create.append(Control(regulation=regulation, control_id=control_id, **values))
        elif any(getattr(control, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(control, field, value)
            to_update.append(control)

    stale = [control.pk for key, control in existing.items() if key not in in_file]
    Control.objects.filter(pk__in=stale).delete()
    Control.objects.bulk_create(to_create)
    Control.objects.bulk_update(to_update, ["title", "group", "sort_key", "catalog_version"])
    return len(to_create) + len(to_update) + len(stale)
