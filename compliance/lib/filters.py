"""Filter building blocks shared by the FilterSets of every app."""

import django_filters
from django import forms


class CaseInsensitiveChoiceField(forms.ChoiceField):
    """A choice field that accepts its values in any letter case and cleans to their spelling."""

    def to_python(self, value):
        value = super().to_python(value).strip()
        spellings = {str(choice).lower(): str(choice) for choice, _ in self.choices if choice}
        return spellings.get(value.lower(), value)

    def validate(self, value):
        if value and not self.valid_value(value):
            accepted = ", ".join(str(choice) for choice, _ in self.choices if choice)
            raise forms.ValidationError(
                f"Unknown value {value!r}; accepted values: {accepted}.", code="invalid_choice"
            )
        super().validate(value)


class CaseInsensitiveChoiceFilter(django_filters.ChoiceFilter):
    field_class = CaseInsensitiveChoiceField
