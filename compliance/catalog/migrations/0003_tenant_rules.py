import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import compliance.catalog.models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_tenant_controls_guidance"),
        ("tenancy", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TenantRule",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "regulation",
                    models.CharField(
                        choices=[
                            ("SOC2", "SOC 2"),
                            ("ISO27001", "ISO/IEC 27001:2022"),
                            ("GDPR", "GDPR"),
                            ("HIPAA", "HIPAA Security Rule"),
                            ("EU_AI_ACT", "EU AI Act"),
                        ],
                        max_length=16,
                    ),
                ),
                ("title", models.CharField(max_length=300)),
                (
                    "severity",
                    models.CharField(
                        choices=[
                            ("low", "Low"),
                            ("medium", "Medium"),
                            ("high", "High"),
                            ("critical", "Critical"),
                        ],
                        default="medium",
                        max_length=16,
                    ),
                ),
                (
                    "entity_types",
                    models.JSONField(default=compliance.catalog.models.all_entity_types),
                ),
                ("expression", models.TextField()),
                ("facts", models.JSONField(default=list, editable=False)),
                ("remediation", models.TextField(blank=True)),
                ("enabled", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "control",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tenant_rules",
                        to="catalog.control",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rules",
                        to="tenancy.tenant",
                    ),
                ),
                (
                    "updated_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["regulation", "created_at", "id"],
                "indexes": [
                    models.Index(fields=["tenant", "regulation"], name="tenantrule_tenant_reg")
                ],
            },
        ),
    ]
