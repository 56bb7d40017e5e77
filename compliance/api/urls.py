from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from compliance.api import catalog, checks, entities, exports, ingestion, keys, oscal, views
from compliance.audit.api import AuditEventListView

app_name = "api"

# The schema and its reference page are public, so client authors can read them.
PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(**PUBLIC), name="openapi"),
    # The split view serves its start-up script as a file, so no inline script is needed.
    path(
        "docs", SpectacularSwaggerSplitView.as_view(url_name="api:openapi", **PUBLIC), name="docs"
    ),
    path("compliance/reports", views.ComplianceReportsView.as_view(), name="reports"),
    path(
        "compliance/aggregated-reports",
        views.AggregatedReportListView.as_view(),
        name="aggregated-reports",
    ),
    path(
        "compliance/reports/<str:report_id>",
        views.ReportDetailView.as_view(),
        name="report-detail",
    ),
    path(
        "compliance/reports/<str:report_id>/pdf",
        views.ReportPdfView.as_view(),
        name="report-pdf",
    ),
    path("compliance/check", checks.ComplianceCheckView.as_view(), name="check"),
    path("compliance/results", ingestion.ResultsIngestionView.as_view(), name="results"),
    path(
        "compliance/reports/<str:report_id>/verification",
        views.ReportVerificationView.as_view(),
        name="report-verification",
    ),
    path("compliance/checks/<str:check_id>", views.CheckDetailView.as_view(), name="check-detail"),
    path(
        "compliance/checks/<str:check_id>/oscal.json",
        oscal.CheckOscalView.as_view(),
        name="check-oscal",
    ),
    path("compliance/checks.csv", exports.CheckListCsvView.as_view(), name="checks-csv"),
    path("compliance/checks.xlsx", exports.CheckListXlsxView.as_view(), name="checks-xlsx"),
    path(
        "compliance/reports/<str:report_id>/findings.csv",
        exports.ReportFindingsCsvView.as_view(),
        name="report-findings-csv",
    ),
    path(
        "compliance/reports/<str:report_id>/findings.xlsx",
        exports.ReportFindingsXlsxView.as_view(),
        name="report-findings-xlsx",
    ),
    path(
        "compliance/reports/<str:report_id>/oscal.json",
        oscal.ReportOscalView.as_view(),
        name="report-oscal",
    ),
    path("compliance/controls", catalog.ControlListView.as_view(), name="controls"),
    path(
        "compliance/controls/<str:control_pk>",
        catalog.ControlDetailView.as_view(),
        name="control-detail",
    ),
    path("compliance/rules", catalog.RuleListView.as_view(), name="rules"),
    path("compliance/rules/<str:rule_id>", catalog.RuleDetailView.as_view(), name="rule-detail"),
    path("audit-events", AuditEventListView.as_view(), name="audit-events"),
    path("entities", entities.EntityListView.as_view(), name="entities"),
    path("entities/<str:entity_id>", entities.EntityDetailView.as_view(), name="entity-detail"),
    path("api-keys", keys.ApiKeyListView.as_view(), name="api-keys"),
    path("api-keys/<str:key_id>", keys.ApiKeyDetailView.as_view(), name="api-key-detail"),
]
