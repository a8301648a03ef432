from __future__ import annotations

from django import forms

from issuance.scep.services import CHALLENGE_TTL_MAX, STATIC_CHALLENGE_MIN_LENGTH


class ScepSettingsForm(forms.Form):
    """The toggles of one SCEP enrollment."""

    enabled = forms.BooleanField(required=False, initial=True)
    allow_renewal = forms.BooleanField(
        required=False,
        initial=True,
        label="Renewal without a challenge",
        help_text="Accept RenewalReq (and PKCSReq) signed with an active certificate this "
        "Application issued from the profile's CA, for the same subject.",
    )
    allow_legacy = forms.BooleanField(
        required=False,
        label="Legacy algorithms",
        help_text="Accept 3DES / DES and SHA-1 from old routers and clients.",
    )
    max_outstanding_challenges = forms.IntegerField(min_value=1, max_value=100000, initial=100)


class EnableScepForm(ScepSettingsForm):
    """Switch SCEP on for one of the Application's profiles."""

    profile = forms.ChoiceField()

    def __init__(self, *args: object, profiles: list[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["profile"].choices = profiles  # type: ignore[attr-defined]


class StaticChallengeForm(forms.Form):
    """Rotate the static challenge: a given one, or a generated one when left empty."""

    challenge = forms.CharField(
        required=False,
        min_length=STATIC_CHALLENGE_MIN_LENGTH,
        max_length=255,
        widget=forms.PasswordInput,
        help_text="Leave empty to generate a random one (shown once).",
    )
    remove = forms.BooleanField(required=False, label="Remove the static challenge")


class MintChallengeForm(forms.Form):
    """Mint a one-time challenge for one device."""

    expected_cn = forms.CharField(required=False, max_length=255, label="Expected CN")
    ttl_minutes = forms.IntegerField(
        min_value=1,
        max_value=int(CHALLENGE_TTL_MAX.total_seconds() // 60),
        initial=60,
        label="Valid for (minutes)",
    )
