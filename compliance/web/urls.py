from django.urls import path

from compliance.web.views import (
    account,
    api_keys,
    audit,
    checks,
    controls,
    entities,
    exports,
    imports,
    member_scope,
    members,
    oscal,
    overview,
    reports,
    tenant_controls,
    verify,
)

app_name = "web"
urlpatterns = [
    path("", account.HomeView.as_view(), name="home"),
    path("login/", account.LoginView.as_view(), name="login"),
    # Only a POST ends the session, so a link or an image cannot log anyone out.
    path("logout/", account.LogoutView.as_view(), name="logout"),
    path("tenant/", account.TenantSwitchView.as_view(), name="tenant-switch"),
    path("overview/", overview.OverviewView.as_view(), name="overview"),
    path("entities/", entities.EntityListView.as_view(), name="entity-list"),
    path("entities/<uuid:entity_id>/", entities.EntityDetailView.as_view(), name="entity-detail"),
    path(
        "entities/<uuid:entity_id>/run-check/",
        entities.EntityRunCheckView.as_view(),
        name="entity-run-check",
    ),
    path("checks/", checks.CheckListView.as_view(), name="check-list"),
    path("checks/import/", imports.ImportView.as_view(), name="import-new"),
    path("checks/<uuid:check_id>/", checks.CheckDetailView.as_view(), name="check-detail"),
    path("checks/<uuid:check_id>/oscal.json", oscal.CheckOscalView.as_view(), name="check-oscal"),
    path("reports/", reports.ReportListView.as_view(), name="report-list"),
    path("reports/new/", reports.ReportCreateView.as_view(), name="report-new"),
    path("reports/verify/", verify.ReportVerifyView.as_view(), name="report-verify"),
    path("reports/<uuid:report_id>/", reports.ReportDetailView.as_view(), name="report-detail"),
    path("reports/<uuid:report_id>/pdf/", reports.ReportPdfView.as_view(), name="report-pdf"),
    path(
        "reports/<uuid:report_id>/export.csv",
        exports.ReportExportView.as_view(file_format="csv"),
        name="report-export-csv",
    ),
    path(
        "reports/<uuid:report_id>/export.xlsx",
        exports.ReportExportView.as_view(file_format="xlsx"),
        name="report-export-xlsx",
    ),
    path(
        "reports/<uuid:report_id>/oscal.json",
        oscal.ReportOscalView.as_view(),
        name="report-oscal",
    ),
    path("controls/", controls.ControlListView.as_view(), name="control-list"),
    path(
        "controls/<str:regulation>/",
        controls.ControlDetailView.as_view(),
        name="control-detail",
    ),
    path(
        "controls/<str:regulation>/own/new/",
        tenant_controls.ControlCreateView.as_view(),
        name="control-new",
    ),
    path(
        "controls/own/<int:control_pk>/edit/",
        tenant_controls.ControlEditView.as_view(),
        name="control-edit",
    ),
    path(
        "controls/own/<int:control_pk>/delete/",
        tenant_controls.ControlDeleteView.as_view(),
        name="control-delete",
    ),
    path(
        "controls/<str:regulation>/rules/new/",
        tenant_controls.RuleCreateView.as_view(),
        name="rule-new",
    ),
    path(
        "controls/rules/<uuid:rule_id>/edit/",
        tenant_controls.RuleEditView.as_view(),
        name="rule-edit",
    ),
    path(
        "controls/rules/<uuid:rule_id>/delete/",
        tenant_controls.RuleDeleteView.as_view(),
        name="rule-delete",
    ),
    path("settings/api-keys/", api_keys.ApiKeyListView.as_view(), name="api-key-list"),
    path(
        "settings/api-keys/<uuid:key_id>/revoke/",
        api_keys.ApiKeyRevokeView.as_view(),
        name="api-key-revoke",
    ),
    path("settings/audit/", audit.AuditEventListView.as_view(), name="audit-list"),
    path("settings/members/", members.MemberListView.as_view(), name="member-list"),
    path(
        "settings/members/<int:membership_id>/role/",
        members.MemberRoleView.as_view(),
        name="member-role",
    ),
    path(
        "settings/members/<int:membership_id>/link/",
        members.MemberLinkView.as_view(),
        name="member-link",
    ),
    path(
        "settings/members/<int:membership_id>/scope/",
        member_scope.MemberScopeView.as_view(),
        name="member-scope",
    ),
    path(
        "settings/members/<int:membership_id>/remove/",
        members.MemberRemoveView.as_view(),
        name="member-remove",
    ),
    path(
        "set-password/<uidb64>/<token>/",
        members.SetPasswordView.as_view(),
        name="set-password",
    ),
]
