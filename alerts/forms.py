"""Forms of the Alerting tab. Services validate; forms collect and show."""

from __future__ import annotations

from typing import Any

from django import forms

from alerts.choices import AlertEvent, ChannelKind
from alerts.models import AlertRule, Channel


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def channel_settings(
    kind: str, recipients: list[str], url: str, secret: str
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A channel's config and secrets from the fields the form and the API share; secrets
    None keeps the stored ones (a blank secret field on edit)."""
    if kind == ChannelKind.EMAIL:
        return {"recipients": recipients}, {}
    if kind in (ChannelKind.SLACK, ChannelKind.TEAMS):
        return {}, ({"url": url} if url else None)
    if kind == ChannelKind.PAGERDUTY:
        return ({"url": url} if url else {}), ({"routing_key": secret} if secret else None)
    return {"url": url}, ({"secret": secret} if secret else None)


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    recipients = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Email: addresses."
    )
    url = forms.CharField(
        required=False,
        max_length=500,
        help_text="Webhook URL (Slack and Teams URLs are kept secret; PagerDuty: optional).",
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Webhook signing secret or PagerDuty routing key. Blank keeps the stored one.",
    )

    def settings(self) -> tuple[dict[str, Any], dict[str, str] | None]:
        """config and secrets for services.save_channel (secrets None: keep stored)."""
        data = self.cleaned_data
        return channel_settings(
            data["kind"], _split(data["recipients"]), data["url"].strip(), data["secret"]
        )

    @classmethod
    def initial_for(cls, channel: Channel) -> dict[str, Any]:
        return {
            "name": channel.name,
            "kind": channel.kind,
            "recipients": ", ".join(channel.config.get("recipients", [])),
            "url": channel.config.get("url", ""),
        }


class AlertRuleForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=AlertEvent.choices, widget=forms.CheckboxSelectMultiple
    )
    thresholds = forms.CharField(
        required=False, initial="30, 14, 7, 1", help_text="Days before expiry, comma-separated."
    )
    channels = forms.ModelMultipleChoiceField(
        queryset=Channel.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "events",
            "thresholds",
            "repeat_daily",
            "profile",
            "name_pattern",
            "include_auto_renewed",
            "channels",
            "is_active",
        ]

    def __init__(self, *args: Any, application: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].queryset = application.alert_channels.all()  # type: ignore[attr-defined]
        self.fields["profile"].queryset = application.profiles.all()  # type: ignore[attr-defined]
        if self.instance.pk:
            self.initial["thresholds"] = ", ".join(map(str, self.instance.thresholds_days))
            self.initial["channels"] = list(self.instance.channels.all())

    def clean_thresholds(self) -> list[int]:
        try:
            return [int(v) for v in _split(self.cleaned_data["thresholds"])]
        except ValueError as exc:
            raise forms.ValidationError("Use whole numbers of days, e.g. 30, 14, 7, 1.") from exc

    def rule(self) -> AlertRule:
        rule: AlertRule = self.save(commit=False)
        rule.thresholds_days = self.cleaned_data["thresholds"]
        return rule
