"""Forms of a tenant's own controls and rules, which the models' ``clean`` validates."""

from django import forms

from compliance.catalog.models import Control, Severity, TenantRule
from compliance.inventory.models import EntityType
from compliance.web.forms import NoColonLabelsMixin


class ControlForm(NoColonLabelsMixin, forms.ModelForm):
    """The form of one of the tenant's controls of one regulation, new or existing."""

    class Meta:
        model = Control
        fields = ["control_id", "title", "group", "guidance"]
        labels = {"control_id": "Control ID", "guidance": "Evidence guidance"}
        help_texts = {
            "control_id": "In the regulation's form, such as CC9.4, A.8.40 or Art. 100. "
            "It may not be an ID of the shipped catalog.",
            "group": "Controls are listed under their group. Optional.",
            "guidance": "What evidence shows that the control is met. Optional.",
        }
        widgets = {"guidance": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, tenant, regulation, **kwargs):
        super().__init__(*args, **kwargs)
        # The model's clean() reads these, so they are set before validation.
        self.instance.tenant = tenant
        self.instance.regulation = regulation
        if not self.instance.catalog_version:
            self.instance.catalog_version = "tenant"


class ControlChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        owner = "" if obj.is_shipped else " (your control)"
        return f"{obj.control_id} {obj.title}{owner}"


class TenantRuleForm(NoColonLabelsMixin, forms.ModelForm):
    """The form of one of the tenant's rules of one regulation, new or existing."""

    control = ControlChoiceField(queryset=Control.objects.none())
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.MEDIUM)
    entity_types = forms.MultipleChoiceField(
        choices=EntityType.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Applies to",
        initial=EntityType.values,
    )

    class Meta:
        model = TenantRule
        fields = [
            "control",
            "title",
            "severity",
            "entity_types",
            "expression",
            "remediation",
            "enabled",
        ]
        help_texts = {
            "expression": "A CEL expression over facts of the vocabulary that returns true "
            "(pass) or false (fail), such as logging.enabled && logging.retention_days >= 730.",
            "remediation": "What to do when the rule fails. Optional.",
            "enabled": "Only enabled rules run in automated checks.",
        }
        widgets = {
            "expression": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
            "remediation": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, tenant, regulation, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.tenant = tenant
        self.instance.regulation = regulation
        self.fields["control"].queryset = (
            Control.objects.visible_to(tenant)
            .filter(regulation=regulation)
            .order_by("sort_key", "control_id")
        )
