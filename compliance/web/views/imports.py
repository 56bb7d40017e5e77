"""The import page: upload a scanner file for one entity and show what was stored."""

import logging
import uuid

from django import forms
from django.conf import settings
from django.shortcuts import render
from django.views import View

from compliance.checks.importers import (
    IMPORTERS,
    ImportFileError,
    InvalidRecordError,
    import_results,
    record_import_events,
)
from compliance.inventory.models import Entity
from compliance.tenancy.models import Role
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.forms import EntityChoiceField, NoColonLabelsMixin

logger = logging.getLogger(__name__)

AUTO_DETECT = ""
# The page lists only the first skipped records, and the summary always gives the total.
MAX_SKIPPED_SHOWN = 200


class ImportForm(NoColonLabelsMixin, forms.Form):
    """A scanner file to import for one of the tenant's entities."""

    entity = EntityChoiceField(queryset=Entity.objects.none(), empty_label=None)
    format = forms.ChoiceField(
        required=False,
        help_text="Leave on detect unless detection picks the wrong format.",
    )
    file = forms.FileField(
        help_text=f"At most {settings.API_MAX_UPLOAD_BYTES // (1024 * 1024)} MB, "
        "the same limit as the API."
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import without the invalid records",
        help_text="Store the valid records and list the malformed ones that were left out. "
        "Without this, one malformed record rejects the whole file.",
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entity"].queryset = Entity.objects.for_tenant(tenant).order_by("name", "id")
        self.fields["format"].choices = [(AUTO_DETECT, "Detect from the content")] + [
            (name, importer.description) for name, importer in IMPORTERS.items()
        ]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.API_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size} bytes, over the limit of "
                f"{settings.API_MAX_UPLOAD_BYTES} bytes. Split it or remove records.",
                code="too_large",
            )
        return upload


def requested_entity(request, raw):
    """Return the tenant's entity that ``raw`` names, ``None`` for no UUID, or raise 404.

    A well-formed UUID of another tenant's entity is a 404, as in the API, so
    the page never reveals whether it exists.
    """
    try:
        entity_id = uuid.UUID(str(raw))
    except ValueError:
        return None
    return get_for_tenant(request, Entity.objects.all(), pk=entity_id)


class ImportView(TenantRoleMixin, View):
    """Import a scanner file as checks of one entity, as ``POST /v1/compliance/results`` does."""

    required_role = Role.OFFICER

    def get(self, request):
        initial = {}
        entity = requested_entity(request, request.GET.get("entity"))
        if entity is not None:
            initial["entity"] = entity
        return self.render_page(request, ImportForm(initial=initial, tenant=request.tenant))

    def post(self, request):
        requested_entity(request, request.POST.get("entity"))
        form = ImportForm(request.POST, request.FILES, tenant=request.tenant)
        if not form.is_valid():
            file_errors = form.errors.as_data().get("file", [])
            too_large = any(error.code == "too_large" for error in file_errors)
            return self.render_page(request, form, status=413 if too_large else 400)

        data = form.cleaned_data
        entity = data["entity"]
        upload = data["file"]
        try:
            result = import_results(
                request.tenant,
                entity,
                upload.read(),
                format=data["format"] or None,
                skip_invalid=data["skip_invalid"],
            )
        except ImportFileError as error:
            logger.info("import of %r for entity %s rejected: %s", upload.name, entity.pk, error)
            context = {
                "import_error": str(error),
                "file_name": upload.name,
                # Skipping helps only when a malformed record, not the file as a whole, failed.
                "suggest_skip": isinstance(error, InvalidRecordError) and not data["skip_invalid"],
            }
            return self.render_page(request, form, status=400, **context)

        record_import_events(request, entity, result)
        counts = result.findings_per_regulation()
        context = {
            "result": result,
            "file_name": upload.name,
            "imported_entity": entity,
            "check_rows": [(check, counts[check.regulation]) for check in result.checks],
            "skipped_shown": result.skipped[:MAX_SKIPPED_SHOWN],
        }
        return self.render_page(request, form, **context)

    def render_page(self, request, form, status=200, **extra):
        has_entities = form.fields["entity"].queryset.exists()
        context = {"form": form, "has_entities": has_entities, **extra}
        return render(request, "web/imports/new.html", context, status=status)
