from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "compliance.demo"
    label = "demo"
