"""The AI entities a tenant registers: agents, models, datasets and workflows."""

import uuid

from django.db import models

from compliance.tenancy.models import Tenant
from compliance.tenancy.scope import within_entities


class EntityType(models.TextChoices):
    AGENT = "agent", "Agent"
    MODEL = "model", "Model"
    DATASET = "dataset", "Dataset"
    WORKFLOW = "workflow", "Workflow"


class EntityQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        """Return the tenant's entities within the caller's access scope."""
        return within_entities(self.filter(tenant=tenant), tenant)


class Entity(models.Model):
    """An AI system under assessment; ``attributes`` contains the facts that checks read."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="entities")
    entity_type = models.CharField(max_length=16, choices=EntityType.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=200, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EntityQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "entities"
        indexes = [models.Index(fields=["tenant", "entity_type"], name="entity_tenant_type_idx")]

    def __str__(self):
        return f"{self.name} ({self.entity_type})"
