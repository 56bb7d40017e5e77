from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "compliance.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        # Connects the login, login failure and logout receivers.
        from compliance.audit import signals  # noqa: F401
