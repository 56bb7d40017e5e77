from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "compliance.keys"
    label = "keys"
