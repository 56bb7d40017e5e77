"""The page where an admin limits an auditor to chosen entities, regulations and a period.

The limits are the scope fields of ``Membership``, and ``compliance.tenancy.scope``
applies them to every query of the auditor's requests. Saving the form
with nothing chosen clears the scope. Each change is an ``update`` event in
the audit trail with the scope before and after.
"""

import logging

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.views import View

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.catalog.models import Regulation
from compliance.inventory.models import Entity
from compliance.tenancy.models import Membership, Role
from compliance.tenancy.scope import describe_scope, membership_scope
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.forms import NoColonLabelsMixin

logger = logging.getLogger(__name__)


class MemberScopeForm(NoColonLabelsMixin, forms.Form):
    """An auditor's scope, where every field left empty limits nothing."""

    entities = forms.ModelMultipleChoiceField(
        queryset=Entity.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every entity.",
    )
    regulations = forms.MultipleChoiceField(
        choices=Regulation.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every regulation.",
    )
    start = forms.DateField(
        label="First day",
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        help_text="Empty: no first day.",
    )
    end = forms.DateField(
        label="Last day",
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        help_text="Inclusive. Empty: no last day.",
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        # Filtered by tenant alone: the admin who edits the scope is never limited.
        self.fields["entities"].queryset = Entity.objects.filter(tenant=tenant).order_by(
            "name", "id"
        )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            raise ValidationError(
                {"end": f"The last day {end:%Y-%m-%d} is before the first day {start:%Y-%m-%d}."}
            )
        return cleaned


def initial_scope(membership):
    return {
        "entities": list(membership.scope_entities.all()),
        "regulations": list(membership.scope_regulations),
        "start": membership.scope_start,
        "end": membership.scope_end,
    }


def scope_audit_details(membership):
    """Return the scope as the audit trail keeps it: ids, codes and ISO dates, ``None`` if open."""
    entity_ids = sorted(str(pk) for pk in membership.scope_entities.values_list("pk", flat=True))
    return {
        "entity_ids": entity_ids,
        "regulations": sorted(membership.scope_regulations),
        "start": membership.scope_start.isoformat() if membership.scope_start else None,
        "end": membership.scope_end.isoformat() if membership.scope_end else None,
    }


def scope_text(membership):
    """Return what the membership's scope limits in words, or ``""`` when it limits nothing."""
    scope = membership_scope(membership)
    if not scope.is_limited:
        return ""
    names = membership.scope_entities.order_by("name", "id").values_list("name", flat=True)
    return describe_scope(scope, list(names))


def save_scope(membership, data):
    """Store the form's scope on an auditor's membership."""
    membership.scope_regulations = sorted(data["regulations"])
    membership.scope_start = data["start"]
    membership.scope_end = data["end"]
    membership.full_clean(exclude=["user", "tenant", "role"])
    membership.save(update_fields=["scope_regulations", "scope_start", "scope_end"])
    membership.scope_entities.set(data["entities"])


class MemberScopeView(TenantRoleMixin, View):
    """Show and change the entities, regulations and days an auditor may view."""

    required_role = Role.ADMIN

    def get(self, request, membership_id):
        membership = self.get_membership(request, membership_id)
        form = MemberScopeForm(initial=initial_scope(membership), tenant=request.tenant)
        return self.render_page(request, membership, form)

    def post(self, request, membership_id):
        membership = self.get_membership(request, membership_id)
        username = membership.user.get_username()
        if membership.role != Role.AUDITOR:
            messages.error(
                request,
                f"{username} is {membership.get_role_display()}, and only auditors can be "
                "limited. Make them an auditor first.",
            )
            return redirect("web:member-list")

        form = MemberScopeForm(request.POST, tenant=request.tenant)
        if not form.is_valid():
            return self.render_page(request, membership, form, status=400)

        with transaction.atomic():
            previous = scope_audit_details(membership)
            save_scope(membership, form.cleaned_data)
            current = scope_audit_details(membership)
            if current != previous:
                record_request_event(
                    request,
                    AuditAction.UPDATE,
                    target=membership,
                    details={
                        "username": username,
                        "role": membership.role,
                        "fields": ["scope"],
                        "scope": current,
                        "previous_scope": previous,
                    },
                )

        if current == previous:
            messages.info(request, f"The scope of {username} is unchanged.")
            return redirect("web:member-list")

        logger.info(
            "user %s changed the scope of user %s in tenant %s",
            request.user.pk,
            membership.user_id,
            request.tenant.pk,
        )
        description = scope_text(membership)
        if description:
            messages.success(request, f"{username} now sees only {description}.")
        else:
            messages.success(request, f"{username} now sees everything in {request.tenant.name}.")
        return redirect("web:member-list")

    def get_membership(self, request, membership_id):
        return get_for_tenant(request, Membership.objects.select_related("user"), pk=membership_id)

    def render_page(self, request, membership, form, status=200):
        context = {
            "membership": membership,
            "form": form,
            "is_auditor": membership.role == Role.AUDITOR,
            "scope_text": scope_text(membership),
        }
        return render(request, "web/members/scope.html", context, status=status)
