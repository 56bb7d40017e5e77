from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "compliance.api"
    label = "api"

    def ready(self):
        # Importing the schema module registers its OpenAPI extensions.
        from compliance.api import schema  # noqa: F401
