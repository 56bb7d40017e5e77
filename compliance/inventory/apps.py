from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "compliance.inventory"
    label = "inventory"
