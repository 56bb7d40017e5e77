from django.urls import path

from compliance.api import views

app_name = "api"
urlpatterns = [
    path("compliance/reports", views.ComplianceReportsView.as_view(), name="reports"),
    path(
        "compliance/reports/<str:report_id>", views.ReportDetailView.as_view(), name="report-detail"
    ),
    path(
        "compliance/reports/<str:report_id>/pdf", views.ReportPdfView.as_view(), name="report-pdf"
    ),
    path("compliance/checks/<str:check_id>", views.CheckDetailView.as_view(), name="check-detail"),
]
