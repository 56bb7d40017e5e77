"""Pages where officers and admins add, edit and delete their tenant's controls and rules.

Every write is validated by the model's ``clean`` through a ModelForm and
recorded in the audit trail. Another tenant's control or rule is a 404, and
shipped controls cannot be edited here.
"""

import logging

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.catalog.models import Control, Regulation, TenantRule
from compliance.checks.rules.loader import load_vocabulary
from compliance.tenancy.models import Role
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.control_forms import ControlForm, TenantRuleForm
from compliance.web.views.controls import parse_regulation

logger = logging.getLogger(__name__)


class ControlEditBase(TenantRoleMixin, View):
    """Shared GET/POST flow of the control and rule forms.

    ``get_target`` returns the row to edit, or ``None`` on the create pages,
    and the regulation of the page.
    """

    required_role = Role.OFFICER
    form_class = None
    template_name = ""

    def get(self, request, **kwargs):
        instance, regulation = self.get_target(request, **kwargs)
        form = self.make_form(request, regulation, instance)
        return self.render_form(request, form, regulation, instance)

    def post(self, request, **kwargs):
        instance, regulation = self.get_target(request, **kwargs)
        form = self.make_form(request, regulation, instance, data=request.POST)
        if not form.is_valid():
            return self.render_form(request, form, regulation, instance)

        created = instance is None
        saved = self.save(request, form, created)
        action = AuditAction.CREATE if created else AuditAction.UPDATE
        details = saved.audit_details()
        if not created:
            details["fields"] = sorted(form.changed_data)
        record_request_event(request, action, target=saved, details=details)
        logger.info(
            "%s %s %s in tenant %s",
            "created" if created else "updated",
            saved._meta.model_name,
            saved.pk,
            request.tenant.pk,
        )
        messages.success(request, f"Saved {self.describe(saved)}.")
        return redirect("web:control-detail", regulation=regulation.value)

    def make_form(self, request, regulation, instance, data=None):
        return self.form_class(
            data, instance=instance, tenant=request.tenant, regulation=regulation
        )

    def render_form(self, request, form, regulation, instance):
        context = {"form": form, "regulation": regulation, "object": instance}
        return render(request, self.template_name, context, status=400 if form.errors else 200)

    def save(self, request, form, created):
        return form.save()


class ControlCreateView(ControlEditBase):
    form_class = ControlForm
    template_name = "web/controls/control_form.html"

    def get_target(self, request, regulation):
        return None, parse_regulation(regulation)

    def describe(self, control):
        return f"control {control.control_id}"


class ControlEditView(ControlCreateView):
    def get_target(self, request, control_pk):
        control = get_for_tenant(request, Control.objects.all(), pk=control_pk)
        return control, Regulation(control.regulation)


class RuleCreateView(ControlEditBase):
    form_class = TenantRuleForm
    template_name = "web/controls/rule_form.html"

    def get_target(self, request, regulation):
        return None, parse_regulation(regulation)

    def save(self, request, form, created):
        rule = form.save(commit=False)
        if created:
            rule.created_by = request.user
        rule.updated_by = request.user
        rule.save()
        return rule

    def describe(self, rule):
        return f"rule “{rule.title}”"

    def render_form(self, request, form, regulation, instance):
        context = {
            "form": form,
            "regulation": regulation,
            "object": instance,
            "facts": load_vocabulary().values(),
        }
        return render(request, self.template_name, context, status=400 if form.errors else 200)


class RuleEditView(RuleCreateView):
    def get_target(self, request, rule_id):
        rules = TenantRule.objects.select_related("control")
        rule = get_for_tenant(request, rules, pk=rule_id)
        return rule, Regulation(rule.regulation)


class DeleteBase(TenantRoleMixin, View):
    """Ask for confirmation on GET and delete on POST."""

    required_role = Role.OFFICER

    def get(self, request, **kwargs):
        target = self.get_target(request, **kwargs)
        return render(request, "web/controls/confirm_delete.html", self.context(target))

    def post(self, request, **kwargs):
        target = self.get_target(request, **kwargs)
        regulation = target.regulation
        description = self.context(target)["description"]
        record_request_event(
            request, AuditAction.DELETE, target=target, details=target.audit_details()
        )
        logger.info(
            "deleted %s %s in tenant %s", target._meta.model_name, target.pk, request.tenant.pk
        )
        target.delete()
        messages.success(request, f"Deleted {description}.")
        return redirect("web:control-detail", regulation=regulation)


class ControlDeleteView(DeleteBase):
    def get_target(self, request, control_pk):
        return get_for_tenant(request, Control.objects.all(), pk=control_pk)

    def context(self, control):
        rules = control.tenant_rules.filter(tenant=control.tenant_id).count()
        return {
            "target": control,
            "description": f"control {control.control_id}",
            "consequence": (
                f"Its {rules} rule{'s' if rules != 1 else ''} will be deleted with it. "
                if rules
                else ""
            )
            + "Findings already recorded for it stay in their checks and reports.",
            "action_url": reverse("web:control-delete", kwargs={"control_pk": control.pk}),
        }


class RuleDeleteView(DeleteBase):
    def get_target(self, request, rule_id):
        rules = TenantRule.objects.select_related("control")
        return get_for_tenant(request, rules, pk=rule_id)

    def context(self, rule):
        return {
            "target": rule,
            "description": f"rule “{rule.title}”",
            "consequence": "Later automated checks no longer run it. Findings already "
            "recorded from it stay in their checks and reports.",
            "action_url": reverse("web:rule-delete", kwargs={"rule_id": rule.pk}),
        }
