"""Create (or refresh) the demo: product admin, root + intermediate CA, two profiles,
the payments-api Application with one member per role. Safe to run again: objects are
found by name, and every run sets fresh random passwords and prints them."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from applications.choices import Role
from applications.models import Application
from applications.services import create_application, set_member_role
from certportal.events import Actor
from profiles import services as ca_services
from profiles.choices import Preset
from profiles.models import CertificateAuthority, CertificateProfile

ACTOR = Actor(label="bootstrap_demo")
APPLICATION = "payments-api"
MEMBERS = {
    Role.ADMIN: "payments-admin",
    Role.OPERATOR: "payments-operator",
    Role.AUDITOR: "payments-auditor",
}


class Command(BaseCommand):
    help = "Create or refresh the demo data (idempotent); --json prints credentials as JSON."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            result = self._bootstrap()
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo ready at {result['url']}"))
            admin = result["product_admin"]
            self.stdout.write(f"  product admin: {admin['username']} / {admin['password']}")
            for role, creds in result["members"].items():
                self.stdout.write(f"  {role}: {creds['username']} / {creds['password']}")

    def _bootstrap(self) -> dict[str, Any]:
        admin, admin_password = _user("demo-admin", superuser=True)
        root = _ca(
            "demo-root",
            lambda: ca_services.create_root_ca(
                ca_services.CASpec(
                    name="Demo Root CA",
                    slug="demo-root",
                    subject=ca_services.CASubject("certportal Demo Root CA", "certportal demo"),
                    validity_days=3650,
                    path_length=1,
                ),
                actor=ACTOR,
            ),
        )
        issuing = _ca(
            "demo-issuing",
            lambda: ca_services.create_intermediate_ca(
                ca_services.CASpec(
                    name="Demo Issuing CA",
                    slug="demo-issuing",
                    subject=ca_services.CASubject("certportal Demo Issuing CA", "certportal demo"),
                    validity_days=1825,
                    path_length=0,
                ),
                parent=root,
                actor=ACTOR,
            ),
        )
        profiles = [
            _profile(
                "tls-server",
                "TLS server",
                Preset.TLS_SERVER,
                issuing,
                dns_rules=["example.test", "*.example.test", "localhost"],
            ),
            _profile(
                "mtls-client",
                "mTLS client",
                Preset.TLS_CLIENT,
                issuing,
                dns_rules=[".example.test"],
                validity_days_default=7,
            ),
        ]
        application = Application.objects.filter(name=APPLICATION).first()
        if application is None:
            application = create_application(
                name=APPLICATION,
                description="Demo Application for the payments team",
                profiles=profiles,
                actor=ACTOR,
            )
        else:
            application.profiles.add(*profiles)
        members = {}
        for role, username in MEMBERS.items():
            user, password = _user(username)
            set_member_role(application, user, role, actor=ACTOR)
            members[str(role)] = {"username": username, "password": password}
        return {
            "url": settings.CERTPORTAL_BASE_URL,
            "product_admin": {"username": admin.get_username(), "password": admin_password},
            "application": application.name,
            "profiles": [p.slug for p in profiles],
            "certificate_authorities": [root.slug, issuing.slug],
            "members": members,
            "acme": _acme_demo(application, profiles[0]),
            "est": _est_demo(application, profiles[0]),
            "scep": _scep_demo(application, profiles[1]),
            "api_tokens": _api_tokens(application),
        }


def _api_tokens(application: Application) -> dict[str, str]:
    """A fresh API token per member role; earlier demo tokens are revoked."""
    from certportal.api import services as credentials
    from certportal.api.models import ApiToken

    tokens = {}
    for role, username in MEMBERS.items():
        user = application.memberships.get(user__username=username).user
        for old in ApiToken.objects.filter(user=user, name="bootstrap_demo", revoked_at=None):
            credentials.revoke_token(old, actor=ACTOR)
        tokens[str(role)] = credentials.create_token(user, name="bootstrap_demo", actor=ACTOR)[1]
    return tokens


def _acme_demo(application: Application, profile: CertificateProfile) -> dict[str, str]:
    """ACME directory of the tls-server profile and a fresh EAB credential;
    the previous demo credential is revoked, like the passwords it is shown once. It is
    reusable, so that several clients can try the demo with it."""
    from django.urls import reverse

    from issuance.acme import services as acme_services

    for old in application.acme_eab_keys.filter(name="bootstrap_demo", revoked_at__isnull=True):
        acme_services.revoke_eab_key(old, actor=ACTOR)
    eab, hmac_key = acme_services.create_eab_key(
        application, name="bootstrap_demo", actor=ACTOR, reusable=True
    )
    path = reverse("acme:directory", kwargs={"app": application.name, "profile": profile.slug})
    return {
        "directory": settings.CERTPORTAL_BASE_URL + path,
        "eab_kid": eab.key_id,
        "eab_hmac": hmac_key,
    }


def _est_demo(application: Application, profile: CertificateProfile) -> dict[str, str]:
    """EST for the tls-server profile and a fresh Basic credential; the previous demo
    credentials are revoked (a revoked name stays taken, so each run gets a new one)."""
    import secrets

    from issuance.est import services as est
    from issuance.est.models import EstEnrollment

    enrollment = EstEnrollment.objects.filter(application=application, profile=profile).first()
    if enrollment is None:
        spec = est.EnrollmentSpec(profile=profile, client_cert_auth=True)
        enrollment = est.save_enrollment(application, spec, actor=ACTOR)
    for old in enrollment.credentials.filter(
        username__startswith="bootstrap-demo", revoked_at__isnull=True
    ):
        est.revoke_credential(old, actor=ACTOR)
    username = f"bootstrap-demo-{secrets.token_hex(3)}"
    _credential, password = est.create_credential(enrollment, username=username, actor=ACTOR)
    base = settings.CERTPORTAL_BASE_URL
    return {
        "url": f"{base}/.well-known/est/{enrollment.label}",
        "username": username,
        "password": password,
    }


def _scep_demo(application: Application, profile: CertificateProfile) -> dict[str, str]:
    """SCEP on the mtls-client profile with a fresh static challenge (rotated each run,
    like the passwords). Legacy algorithms are on because Debian's scepclient (micromdm
    2.1.0) sends DES and SHA-1; the demo CA is EC, so that client needs the RA's
    fingerprint (``-ca-fingerprint``) to pick its recipient."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from django.urls import reverse

    from issuance.scep import services as scep_services
    from issuance.scep.models import ScepEnrollment

    enrollment = ScepEnrollment.objects.filter(application=application, profile=profile).first()
    if enrollment is None:
        enrollment = scep_services.enable(application, profile, actor=ACTOR, allow_legacy=True)
    challenge = scep_services.set_static_challenge(enrollment, actor=ACTOR)
    path = reverse("scep:pkiclient", kwargs={"app": application.name, "profile": profile.slug})
    ra = x509.load_pem_x509_certificate(enrollment.ra_certificate_pem.encode())
    return {
        "url": settings.CERTPORTAL_BASE_URL + path,
        "challenge": challenge,
        "ra_fingerprint": hashlib.sha256(ra.public_bytes(Encoding.DER)).hexdigest(),
    }


def _user(username: str, *, superuser: bool = False) -> tuple[Any, str]:
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username)
    password = secrets.token_urlsafe(18)
    user.set_password(password)
    user.is_superuser = user.is_staff = superuser
    user.email = f"{username}@example.test"
    user.save()
    return user, password


def _ca(slug: str, create: Any) -> CertificateAuthority:
    return CertificateAuthority.objects.filter(slug=slug).first() or create()


def _profile(
    slug: str, name: str, preset: str, ca: CertificateAuthority, **fields: Any
) -> CertificateProfile:
    existing = CertificateProfile.objects.filter(slug=slug).first()
    if existing:
        return existing
    return ca_services.create_profile(
        actor=ACTOR, preset=preset, name=name, slug=slug, issuing_ca=ca, **fields
    )
