"""NIST OSCAL assessment results (JSON) of a check or of a ready report.

Both exports build one ``assessment-results`` document in the OSCAL JSON
model, release ``OSCAL_VERSION``:

* A check becomes one ``result`` whose ``start`` and ``end`` are the
  check's creation and completion times. Each finding becomes one
  observation, and each passing or failing finding also becomes one OSCAL
  finding against its control.
* A report becomes one ``result`` for its period, in the tenant's time
  zone. Each control in the stored report findings becomes one observation
  and, when its latest status is pass or fail, one OSCAL finding. The
  export reads the stored report JSON, which the report digest covers, and
  never aggregates again.

OSCAL defines only two finding states, so ``pass`` is ``satisfied`` and
``fail`` is ``not-satisfied``. A control that is not assessed or not
applicable has an observation with its status and no finding.

OSCAL IDs are tokens (a letter or underscore, then letters, digits, ``.``,
``-`` or ``_``), which control IDs such as ``Art. 32`` or
``164.308(a)(1)(ii)(A)`` are not. The target of a finding is therefore a
token derived from the regulation and control ID (``gdpr_art-32``). The
exact values are the target's ``regulation`` and ``control-id`` properties
in the ``OSCAL_NAMESPACE`` namespace, which this project's OSCAL importer
reads back.

Every UUID is a version 5 UUID of the object it names, and every time comes
from the stored data, so exporting the same check or report twice gives
the same bytes.
"""

import datetime as dt
import hashlib
import json
import re
import uuid
import zoneinfo

from django.http import HttpResponse

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.catalog.models import Regulation
from compliance.checks.importers.oscal import PROJECT_NAMESPACE
from compliance.checks.models import FindingStatus
from compliance.reports.aggregation import isoformat_z, period_bounds
from compliance.reports.downloads import record_report_download, set_report_headers

OSCAL_VERSION = "1.2.3"
MEDIA_TYPE = "application/json"
# The format name of an OSCAL download in the audit trail.
FILE_FORMAT = "oscal-json"
OSCAL_NAMESPACE = PROJECT_NAMESPACE
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, OSCAL_NAMESPACE)

STATES = {
    FindingStatus.PASS: "satisfied",
    FindingStatus.FAIL: "not-satisfied",
}
TOKEN_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")


def stable_uuid(*parts):
    """Return the version 5 UUID of ``parts``, the same for the same parts on every call."""
    return str(uuid.uuid5(UUID_NAMESPACE, "/".join(str(part) for part in parts)))


def control_token(regulation, control_id):
    """Return an OSCAL token for a control, e.g. ``gdpr_art-32`` or ``hipaa_164-312-a-1``."""
    slug = TOKEN_SEPARATORS.sub("-", control_id).strip("-").lower()
    return f"{Regulation(regulation).framework}_{slug}"


def control_props(regulation, control_id):
    """Return the target properties that carry a control's exact regulation and ID."""
    return [
        {"name": "regulation", "ns": OSCAL_NAMESPACE, "value": Regulation(regulation).value},
        {"name": "control-id", "ns": OSCAL_NAMESPACE, "value": control_id},
    ]


def _prop(name, value):
    return {"name": name, "ns": OSCAL_NAMESPACE, "value": str(value)}


def _text(value, fallback):
    """Return ``value`` stripped, or ``fallback`` for an empty value, which OSCAL rejects."""
    text = (value or "").strip()
    return text or fallback


def _present(key, items):
    """Return ``{key: items}``, or nothing for an empty list, because OSCAL arrays need an item."""
    return {key: items} if items else {}


def _reviewed_controls(regulation, control_ids):
    controls = [{"control-id": control_token(regulation, control_id)} for control_id in control_ids]
    selection = {"include-controls": controls} if controls else {"include-all": {}}
    return {"control-selections": [selection]}


def _observation(observation_uuid, title, description, collected, props):
    return {
        "uuid": observation_uuid,
        "title": title,
        "description": description,
        "props": props,
        "methods": ["TEST"],
        "types": ["finding"],
        "collected": collected,
    }


def _finding(finding_uuid, title, description, regulation, control_id, status, observation_uuid):
    return {
        "uuid": finding_uuid,
        "title": title,
        "description": description,
        "target": {
            "type": "objective-id",
            "target-id": control_token(regulation, control_id),
            "props": control_props(regulation, control_id),
            "status": {"state": STATES[status]},
        },
        "related-observations": [{"observation-uuid": observation_uuid}],
    }


def _document(document_uuid, title, last_modified, version, plan_resource, result):
    """Wrap one result into an ``assessment-results`` document.

    The project has no separate OSCAL assessment plan, so ``import-ap``
    points at a back-matter resource that describes how the results were
    produced.
    """
    resource_uuid = stable_uuid(document_uuid, "assessment-plan")
    return {
        "assessment-results": {
            "uuid": document_uuid,
            "metadata": {
                "title": title,
                "last-modified": last_modified,
                "version": version,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": f"#{resource_uuid}"},
            "results": [result],
            "back-matter": {
                "resources": [
                    {
                        "uuid": resource_uuid,
                        "title": plan_resource[0],
                        "description": plan_resource[1],
                    }
                ]
            },
        }
    }


# Check


def check_assessment_results(check):
    """Return the OSCAL assessment results of one check and its findings."""
    regulation = Regulation(check.regulation)
    findings = sorted(check.findings.all(), key=lambda finding: (finding.control_id, finding.id))
    start = check.created_at
    end = max(check.completed_at or start, start)
    collected = isoformat_z(end)
    document_uuid = stable_uuid("check", check.pk)

    observations, oscal_findings = [], []
    for finding in findings:
        observation_uuid = stable_uuid("check", check.pk, "observation", finding.pk)
        title = _text(finding.title, f"{regulation.label} {finding.control_id}")
        observations.append(
            _observation(
                observation_uuid,
                title,
                _text(finding.description, title),
                collected,
                [
                    *control_props(regulation, finding.control_id),
                    _prop("finding-id", finding.finding_id),
                    _prop("status", finding.status),
                    _prop("severity", finding.severity),
                ],
            )
        )
        if finding.status in STATES:
            oscal_findings.append(
                _finding(
                    stable_uuid("check", check.pk, "finding", finding.pk),
                    title,
                    _text(finding.description, title),
                    regulation,
                    finding.control_id,
                    finding.status,
                    observation_uuid,
                )
            )

    entity = check.entity
    result = {
        "uuid": stable_uuid("check", check.pk, "result"),
        "title": f"{regulation.label} check of {entity.name}",
        "description": (
            f"A {check.get_source_display().lower()} {regulation.label} check of the "
            f"{entity.get_entity_type_display().lower()} {entity.name}, status {check.status}."
        ),
        "start": isoformat_z(start),
        "end": collected,
        "props": [
            _prop("check-id", check.pk),
            _prop("entity-id", entity.pk),
            _prop("source", check.source),
        ],
        "reviewed-controls": _reviewed_controls(
            regulation, sorted({finding.control_id for finding in findings})
        ),
        **_present("observations", observations),
        **_present("findings", oscal_findings),
    }
    return _document(
        document_uuid,
        f"{regulation.label} check {check.pk}",
        collected,
        # Versioned by its completion time, which stays the same on every export.
        collected,
        (
            "Check of recorded facts or imported scanner results",
            "The check evaluated the entity against the regulation's controls, either with "
            "the automated rules of the product or by importing a scanner's results.",
        ),
        result,
    )


# Report


def report_assessment_results(report):
    """Return the OSCAL assessment results of a ready report's period, from the stored JSON."""
    regulation = Regulation(report.regulation)
    zone = zoneinfo.ZoneInfo(report.summary.get("time_zone") or "UTC")
    lower, upper = period_bounds(report.period_start, report.period_end, zone)
    # The period is [lower, upper), and OSCAL's end is inclusive.
    end = upper - dt.timedelta(seconds=1)
    entries = report.findings or []
    document_uuid = stable_uuid("report", report.pk)

    observations, oscal_findings = [], []
    for entry in entries:
        control_id = entry["control_id"]
        observation_uuid = stable_uuid("report", report.pk, "observation", control_id)
        title = _text(entry.get("title"), f"{regulation.label} {control_id}")
        description = _text(entry.get("description"), title)
        status = entry["status"]
        observations.append(
            _observation(
                observation_uuid,
                title,
                description,
                entry["last_seen"],
                [
                    *control_props(regulation, control_id),
                    _prop("status", status),
                    _prop("severity", entry["severity"]),
                    _prop("check-id", entry["check_id"]),
                    _prop("first-seen", entry["first_seen"]),
                ],
            )
        )
        if status in STATES:
            oscal_findings.append(
                _finding(
                    stable_uuid("report", report.pk, "finding", control_id),
                    title,
                    description,
                    regulation,
                    control_id,
                    status,
                    observation_uuid,
                )
            )

    entity = report.entity
    result = {
        "uuid": stable_uuid("report", report.pk, "result"),
        "title": (
            f"{regulation.label} report of {entity.name}, "
            f"{report.period_start.isoformat()} to {report.period_end.isoformat()}"
        ),
        "description": (
            "The latest status of each control with evidence in the period, as stored in "
            f"report {report.public_id} with digest {report.digest}."
        ),
        "start": lower.isoformat(),
        "end": end.isoformat(),
        "props": [
            _prop("report-id", report.public_id),
            _prop("report-digest", report.digest),
            _prop("entity-id", entity.pk),
        ],
        "reviewed-controls": _reviewed_controls(
            regulation, [entry["control_id"] for entry in entries]
        ),
        **_present("observations", observations),
        **_present("findings", oscal_findings),
    }
    return _document(
        document_uuid,
        f"{regulation.label} report {report.public_id}",
        isoformat_z(report.generated_at),
        report.digest,
        (
            "Period report of the compliance service",
            "The report takes, for each control, the latest finding of the entity's checks "
            "in the period.",
        ),
        result,
    )


def oscal_response(document, filename):
    """Return ``document`` as a JSON download named ``filename``."""
    body = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    response = HttpResponse(body.encode("utf-8"), content_type=MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def check_download(request, check):
    """Record the download of ``check`` as OSCAL in the audit trail and return the file."""
    record_request_event(
        request,
        AuditAction.EXPORT_DOWNLOADED,
        target=check,
        details={"check_id": str(check.pk), "format": FILE_FORMAT},
    )
    return oscal_response(check_assessment_results(check), f"check-{check.pk}.oscal.json")


def report_download(request, report):
    """Record the download of a ready ``report`` as OSCAL in the audit trail and return the file."""
    record_report_download(request, report, FILE_FORMAT)
    filename = f"report-{report.public_id.replace(':', '-')}.oscal.json"
    response = oscal_response(report_assessment_results(report), filename)
    return set_report_headers(response, report, hashlib.sha256(response.content).hexdigest())
