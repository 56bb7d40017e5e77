from django.apps import AppConfig
from django.core import checks


class ReportsConfig(AppConfig):
    name = "compliance.reports"
    label = "reports"

    def ready(self):
        from compliance.reports.signing import check_signing_settings

        checks.register(check_signing_settings)
