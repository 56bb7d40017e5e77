from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "compliance.tenancy"
    label = "tenancy"
