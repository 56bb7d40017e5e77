from django.apps import AppConfig
from django.db.models.signals import post_migrate


def load_catalog(sender, **kwargs):
    from compliance.catalog.loader import sync_catalog

    sync_catalog()


class CatalogConfig(AppConfig):
    name = "compliance.catalog"
    label = "catalog"

    def ready(self):
        post_migrate.connect(load_catalog, sender=self)
