"""Load the bundled control catalogs into the ``Control`` table."""

import csv
from pathlib import Path
from typing import NamedTuple

from django.db import transaction

from compliance.catalog.models import Control, Regulation, Requirement

DATA_DIR = Path(__file__).resolve().parent / "data"
CATALOG_FILE = DATA_DIR / "controls.csv"
CATALOG_VERSION = "2026.12.2"


class CatalogRow(NamedTuple):
    """One row of the catalog file."""

    regulation: Regulation
    control_id: str
    title: str
    group: str
    requirement: str
    guidance: str


def read_catalog_rows(path=CATALOG_FILE):
    """Yield every row of a catalog CSV file as a ``CatalogRow``.

    Raises ``ValueError`` for an unknown regulation or HIPAA requirement mark.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            requirement = row["requirement"]
            if requirement and requirement not in Requirement.values:
                raise ValueError(
                    f"Invalid requirement {requirement!r} of {row['control_id']!r} in {path}. "
                    f"Use {' or '.join(Requirement.values)}, or leave it empty."
                )
            yield CatalogRow(
                regulation=Regulation(row["regulation"]),
                control_id=row["control_id"],
                title=row["title"],
                group=row["group"],
                requirement=requirement,
                guidance=row["guidance"],
            )


def read_catalog(path=CATALOG_FILE):
    """Yield ``(regulation, control_id, title, group)`` rows from a catalog CSV file."""
    for row in read_catalog_rows(path):
        yield row.regulation, row.control_id, row.title, row.group


@transaction.atomic
def sync_catalog(path=CATALOG_FILE):
    """Make the Control table equal the catalog file; return the number of rows changed.

    Shipped controls missing from the file are deleted. Tenants' own controls
    are never read, changed or deleted. Running it again with the same file
    changes nothing, so it is safe after every migration.
    """
    existing = {(c.regulation, c.control_id): c for c in Control.objects.shipped()}
    to_create, to_update, in_file = [], [], set()
    for position, row in enumerate(read_catalog_rows(path)):
        regulation, control_id = row.regulation, row.control_id
        in_file.add((regulation.value, control_id))
        control = existing.get((regulation.value, control_id))
        values = {
            "title": row.title,
            "group": row.group,
            "requirement": row.requirement,
            "guidance": row.guidance,
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
    Control.objects.bulk_update(
        to_update,
        ["title", "group", "requirement", "guidance", "sort_key", "catalog_version"],
    )
    return len(to_create) + len(to_update) + len(stale)
