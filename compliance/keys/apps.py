from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "compliance.keys"
    label = "keys"

    def ready(self):
        # Registers the system checks of the JWT and rate-limit settings.
        from compliance.keys import checks  # noqa: F401
