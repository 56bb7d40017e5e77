from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "compliance.api"
    label = "api"
