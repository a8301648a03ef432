"""EST endpoints (RFC 7030, RFC 8951) under /.well-known/est/[<label>/]: parse, authenticate,
call the EST services; refusals are plain text with the status RFC 7030 gives them."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from certportal import auth, faults
from certportal.clientip import client_ip
from certportal.events import Actor
from issuance.est import clientcert, messages, services
from issuance.est.models import EstCredential, EstEnrollment
from issuance.est.services import EstRefused
from issuance.services import AttachedProfile
from pki import certs
from pki.errors import PKIError
from profiles.models import CertificateProfile

View = Callable[..., HttpResponse]


def est_endpoint(*methods: str) -> Callable[[View], View]:
    """CSRF-exempt (clients authenticate per request), method-restricted, and turning
    EstRefused into its plain-text answer."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, label: str | None = None) -> HttpResponse:
            try:
                response = view(request, label)
            except EstRefused as refused:
                response = refusal(refused, label)
            response["Cache-Control"] = "no-store"
            return response

        return csrf_exempt(require_http_methods(list(methods))(wrapped))

    return decorate


def refusal(refused: EstRefused, label: str | None) -> HttpResponse:
    response = HttpResponse(
        refused.message + "\n", status=refused.status, content_type="text/plain"
    )
    if refused.status == 401:
        response["WWW-Authenticate"] = f'Basic realm="EST {label or "default"}"'
    if refused.status == 429:
        response["Retry-After"] = str(auth.PAIR.seconds)
    return response


def outage_answer() -> HttpResponse:
    return HttpResponse(faults.MESSAGE + "\n", status=503, content_type="text/plain")


def _enrollment(label: str | None) -> tuple[EstEnrollment, AttachedProfile]:
    enrollment = services.find_enrollment(label)
    if enrollment is None:
        raise EstRefused(404, "No EST enrollment here.")
    return enrollment, services.profile_for(enrollment)


@est_endpoint("GET", "HEAD")
def cacerts(request: HttpRequest, label: str | None) -> HttpResponse:
    _, found = _enrollment(label)
    profile = found.profile
    return _certs_only(messages.certs_only(services.ca_chain(profile)))


@est_endpoint("GET", "HEAD")
def csrattrs(request: HttpRequest, label: str | None) -> HttpResponse:
    enrollment, found = _enrollment(label)
    profile = found.profile
    rules = profile.policy()
    der = messages.csr_attributes(
        key_algorithms=sorted(rules.key_algorithms),
        ec_curves=sorted(rules.ec_curves),
        challenge_password=enrollment.basic_auth,
        require_san=rules.require_san,
    )
    if not der:
        return HttpResponse(status=204)
    response = HttpResponse(messages.b64(der), content_type=messages.CSRATTRS)
    response["Content-Transfer-Encoding"] = "base64"
    return response


@est_endpoint("POST")
def simpleenroll(request: HttpRequest, label: str | None) -> HttpResponse:
    return _enroll(request, label, server_keygen=False)


@est_endpoint("POST")
def serverkeygen(request: HttpRequest, label: str | None) -> HttpResponse:
    return _enroll(request, label, server_keygen=True)


@est_endpoint("POST")
def simplereenroll(request: HttpRequest, label: str | None) -> HttpResponse:
    enrollment, found = _enrollment(label)
    profile = found.profile
    cert = clientcert.from_proxy(request)
    if cert is None:
        raise EstRefused(401, "simplereenroll needs the client certificate being renewed.")
    parsed, digest = _csr(request)
    old = services.reenrollment_target(enrollment, profile, cert, parsed)
    actor = Actor(
        label=f"est:{enrollment.label}:cert:{old.serial_number}", source_ip=client_ip(request)
    )
    outcome = services.enroll(enrollment, found, parsed, digest, actor=actor, replaces=old)
    return _answer(outcome, server_keygen=False)


@est_endpoint("GET", "HEAD", "POST")
def fullcmc(request: HttpRequest, label: str | None) -> HttpResponse:
    return HttpResponse("Full CMC is not supported.\n", status=501, content_type="text/plain")


def _enroll(request: HttpRequest, label: str | None, *, server_keygen: bool) -> HttpResponse:
    enrollment, found = _enrollment(label)
    profile = found.profile
    actor, credential = _authenticate(request, enrollment, profile)
    if server_keygen and not profile.allow_server_keygen:
        raise EstRefused(403, f"Profile {profile.slug} does not allow server-generated keys.")
    parsed, digest = _csr(request)
    outcome = services.enroll(
        enrollment,
        found,
        parsed,
        digest,
        actor=actor,
        server_keygen=server_keygen,
        credential=credential,
    )
    return _answer(outcome, server_keygen=server_keygen)


def _authenticate(
    request: HttpRequest, enrollment: EstEnrollment, profile: CertificateProfile
) -> tuple[Actor, EstCredential | None]:
    """HTTP Basic (throttled like the portal's logins) or a trusted client certificate."""
    source_ip = client_ip(request)
    basic = _basic_credentials(request)
    if basic is not None and enrollment.basic_auth:
        username, password = basic
        counted = f"est:{enrollment.label}:{username}"
        if auth.locked_out(request, counted) is not None:
            raise EstRefused(429, "Too many failed log-in attempts; wait before trying again.")
        credential = services.check_basic(enrollment, username, password)
        if credential is None:
            auth.note_failure(request, counted)
            raise EstRefused(401, "Wrong or unusable credentials.")
        auth.clear_failures(request, counted)
        return Actor(label=f"est:{enrollment.label}:{username}", source_ip=source_ip), credential
    cert = clientcert.from_proxy(request) if enrollment.client_cert_auth else None
    if cert is not None and services.client_cert_trusted(enrollment, profile, cert):
        serial = certs.serial_hex(cert.serial_number)
        return Actor(label=f"est:{enrollment.label}:cert:{serial}", source_ip=source_ip), None
    raise EstRefused(401, "Authentication required.")


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise EstRefused(401, "Malformed Basic credentials.") from None
    username, sep, password = decoded.partition(":")
    if not sep or len(username) > 100:
        raise EstRefused(401, "Malformed Basic credentials.")
    return username, password


def _csr(request: HttpRequest) -> tuple[Any, str]:
    """The CSR of the body, with its digest; 415, 413 or 400 otherwise."""
    if (request.content_type or "").lower() not in messages.CSR_CONTENT_TYPES:
        raise EstRefused(415, "Send the CSR as application/pkcs10.")
    limit = settings.CERTPORTAL_EST_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise EstRefused(413, f"The body is larger than {limit} bytes.")
    body = request.body
    if len(body) > limit:
        raise EstRefused(413, f"The body is larger than {limit} bytes.")
    try:
        parsed = messages.parse_csr(body)
    except PKIError as exc:
        raise EstRefused(400, exc.message) from exc
    return parsed, messages.csr_digest(parsed)


def _answer(outcome: services.Outcome, *, server_keygen: bool) -> HttpResponse:
    if outcome.certificate is None:
        response = HttpResponse(
            "The request is waiting for approval; send the same CSR again later.\n",
            status=202,
            content_type="text/plain",
        )
        response["Retry-After"] = str(settings.CERTPORTAL_EST_RETRY_AFTER_SECONDS)
        return response
    issued = outcome.certificate.as_x509()
    if server_keygen:
        assert outcome.private_key_pem is not None
        body, content_type = messages.serverkeygen_body(outcome.private_key_pem, issued)
        return HttpResponse(body, content_type=content_type)
    return _certs_only(messages.certs_only([issued]))


def _certs_only(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type=messages.CERTS_ONLY)
    response["Content-Transfer-Encoding"] = "base64"
    return response
