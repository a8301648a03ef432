"""Forms of the Renewal tab. Services validate; forms collect and show."""

from __future__ import annotations

from django import forms

from issuance.choices import HELD_KEY_MODES
from issuance.models import RenewalSettings


class RenewalSettingsForm(forms.ModelForm):
    class Meta:
        model = RenewalSettings
        fields = ["auto_renew", "renew_days_before", "key_mode"]
        help_texts = {
            "renew_days_before": "Blank: each profile's renewal window.",
        }

    key_mode = forms.ChoiceField(choices=[(mode.value, mode.label) for mode in HELD_KEY_MODES])


class CertificateRenewalForm(forms.Form):
    auto_renew = forms.TypedChoiceField(
        choices=[("", "As the Application"), ("on", "On"), ("off", "Off")],
        required=False,
        coerce=lambda v: {"on": True, "off": False}.get(v),
        empty_value=None,
    )
    renew_days_before = forms.IntegerField(required=False, min_value=1)
