"""Public PKI endpoints (CA certificates, CRLs; OCSP is issuance.ocsp; no login: relying
parties call them) and the portal's certificate pages (login, scoped to the user's Applications)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from applications.models import Application
from applications.views import application_context
from certportal import permissions
from certportal.paging import CappedPaginator
from certportal.web import (
    actor_for,
    add_refusal_to_form,
    attachment,
    is_filtered,
    render_page,
    scoped_application,
)
from issuance import inventory, revocation, services
from issuance.choices import EnrollmentMethod
from issuance.forms import (
    REJECTION_FIELDS,
    ImportForm,
    InventoryFilterForm,
    IssueForm,
    Pkcs12Form,
    RenewForm,
    RevokeForm,
)
from issuance.models import Certificate
from pki import certs, export
from profiles.choices import CAStatus
from profiles.models import CertificateAuthority


def _published_ca(slug: str) -> CertificateAuthority:
    return get_object_or_404(
        CertificateAuthority.objects.exclude(status=CAStatus.PENDING_CERTIFICATE), slug=slug
    )


@require_safe
def ca_certificate(request: HttpRequest, slug: str) -> HttpResponse:
    """The CA certificate in DER: the caIssuers URL of the AIA extension."""
    ca = _published_ca(slug)
    response = HttpResponse(export.der(ca.certificate()), content_type="application/pkix-cert")
    return attachment(response, ca.slug, "crt")


@require_safe
def ca_chain(request: HttpRequest, slug: str) -> HttpResponse:
    """The CA certificate and the ones above it, as PEM."""
    ca = _published_ca(slug)
    return HttpResponse(ca.chain_pem_with_self(), content_type="application/pem-certificate-chain")


@require_safe
def crl(request: HttpRequest, slug: str) -> HttpResponse:
    ca = _published_ca(slug)
    response = HttpResponse(revocation.current_crl(ca), content_type="application/pkix-crl")
    response["Cache-Control"] = "public, max-age=300"
    return response


# --- Portal: the Certificates tab of an Application ----------------------------------------
# Every view fetches the Application through the user's scope (applications_for), then the
# certificate through that Application: another Application's certificate is a 404.


def _certificate(application: Application, pk: Any) -> Certificate:
    return get_object_or_404(
        Certificate.objects.filter(application=application)
        .select_related("profile", "ca")
        .defer("ca__crl_der"),  # a CRL of 100k entries is megabytes; no page shows it
        pk=pk,
    )


def _inventory(request: HttpRequest, application: Application) -> tuple[Any, InventoryFilterForm]:
    form = InventoryFilterForm(request.GET, profiles=application.profiles.all())
    queryset = inventory.filter_certificates(
        Certificate.objects.filter(application=application), **form.filters()
    )
    return queryset, form


@login_required
@require_safe
def certificate_list(request: HttpRequest, slug: str) -> HttpResponse:
    """The inventory: search, filters, sort, pagination; htmx swaps just the results."""
    application = scoped_application(request, slug)
    queryset, form = _inventory(request, application)
    columns = ("id", "common_name", "serial_number", "status", "not_before", "not_after")
    page = CappedPaginator(
        queryset.select_related("profile").only(
            *columns, "method", "key_algorithm", "created_at", "profile__name", "profile__slug"
        ),
        form.page_size(),
        counted=not form.filters()["q"],
    ).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = application_context(request, application, "certificates")
    context.update(
        form=form,
        page=page,
        query=query.urlencode(),
        filtered=is_filtered(query),
        now=timezone.now(),
    )
    return render_page(
        request, "issuance/certificate_list.html", "issuance/_certificate_table.html", context
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = (
    "common_name", "sans", "serial_number", "fingerprint_sha256", "status", "profile",
    "method", "key_algorithm", "not_before", "not_after", "revoked_at", "revocation_reason",
    "issuer", "created_at",
)  # fmt: skip


def _csv_rows(queryset: Any) -> Iterator[list[Any]]:
    """The header, then one row per certificate, streamed from a server-side cursor in
    chunks: memory stays the same for ten rows or a million."""
    yield list(CSV_COLUMNS)
    rows = queryset.values_list(
        "common_name", "sans", "serial_number", "fingerprint_sha256", "status", "profile__slug",
        "method", "key_algorithm", "not_before", "not_after", "revoked_at", "revocation_reason",
        "issuer", "created_at",
    )  # fmt: skip
    for row in rows.iterator(chunk_size=2000):
        cn, sans, serial, fingerprint, status, profile, method, key_algorithm = row[:8]
        not_before, not_after, revoked_at, reason, issuer, created_at = row[8:]
        yield [
            _csv_safe(cn), _csv_safe(" ".join(sans)), serial, fingerprint, status, profile or "",
            method, key_algorithm, not_before.isoformat(), not_after.isoformat(),
            revoked_at.isoformat() if revoked_at else "", reason, _csv_safe(issuer),
            created_at.isoformat(),
        ]  # fmt: skip


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in names a requester chose."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@login_required
@require_safe
def certificate_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    application = scoped_application(request, slug)
    queryset, _form = _inventory(request, application)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _csv_rows(queryset)), content_type="text/csv"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return attachment(response, f"{application.name}-certificates-{stamp}", "csv")


def _renewal_chain(certificate: Certificate) -> dict[str, Any]:
    replaced_by = Certificate.objects.filter(replaces=certificate).only("id", "common_name").first()
    return {"replaces": certificate.replaces, "replaced_by": replaced_by}


@login_required
@require_safe
def certificate_detail(request: HttpRequest, slug: str, pk: Any) -> HttpResponse:
    application = scoped_application(request, slug)
    certificate = _certificate(application, pk)
    context = application_context(request, application, "certificates")
    context.update(
        certificate=certificate,
        info=certs.describe_certificate(certificate.as_x509()),
        chain=[certs.describe_certificate(c) for c in certificate.chain()],
        pkcs12_form=Pkcs12Form(),
        **_renewal_chain(certificate),
    )
    return render(request, "issuance/certificate_detail.html", context)


DOWNLOADS = {"cert": "certificate", "chain": "chain", "fullchain": "fullchain"}


@login_required
@require_safe
def certificate_download(request: HttpRequest, slug: str, pk: Any, kind: str) -> HttpResponse:
    """The certificate, its chain, or both, as PEM (public material: any role)."""
    application = scoped_application(request, slug)
    certificate = _certificate(application, pk)
    if kind not in DOWNLOADS:
        raise Http404
    chain = export.pem_chain(certificate.chain())
    body = {
        "cert": certificate.certificate_pem,
        "chain": chain,
        "fullchain": certificate.certificate_pem.strip() + "\n" + chain,
    }[kind]
    response = HttpResponse(body, content_type="application/x-pem-file")
    return attachment(response, _download_name(certificate), f"{DOWNLOADS[kind]}.pem")


def _download_name(certificate: Certificate) -> str:
    return certificate.common_name or certificate.serial_number


@login_required
@require_POST
def certificate_pkcs12(request: HttpRequest, slug: str, pk: Any) -> HttpResponse:
    """The held key, certificate and chain as PKCS#12 under the user's password; audited."""
    application = scoped_application(request, slug, permissions.DOWNLOAD_KEY)
    certificate = _certificate(application, pk)
    form = Pkcs12Form(request.POST)
    if form.is_valid():
        try:
            data = services.export_pkcs12(
                certificate, password=form.cleaned_data["password"], actor=actor_for(request)
            )
        except services.CertificateFileError as exc:
            add_refusal_to_form(form, exc)
        else:
            response = HttpResponse(data, content_type="application/x-pkcs12")
            response["Cache-Control"] = "no-store"
            return attachment(response, _download_name(certificate), "p12")
    context = application_context(request, application, "certificates")
    context.update(
        certificate=certificate,
        info=certs.describe_certificate(certificate.as_x509()),
        chain=[certs.describe_certificate(c) for c in certificate.chain()],
        pkcs12_form=form,
        **_renewal_chain(certificate),
    )
    return render(request, "issuance/certificate_detail.html", context, status=400)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def certificate_revoke(request: HttpRequest, slug: str, pk: Any) -> HttpResponse:
    """A confirmation page with a reason, then the revocation."""
    application = scoped_application(request, slug, permissions.REVOKE)
    certificate = _certificate(application, pk)
    form = RevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.revoke(
                certificate, reason=form.cleaned_data["reason"], actor=actor_for(request)
            )
        except services.RevocationError as exc:
            add_refusal_to_form(form, exc)
        else:
            notify = messages.success if certificate.revocation_published else messages.warning
            notify(request, _revoked_message(certificate))
            return redirect("issuance:certificate", slug=application.name, pk=certificate.pk)
    context = application_context(request, application, "certificates")
    context.update(certificate=certificate, form=form)
    status = 400 if form.errors else 200
    return render(request, "issuance/certificate_revoke.html", context, status=status)


def _imported_message(certificate: Certificate) -> str:
    if certificate.revocation_published:
        assert certificate.ca is not None
        return (
            f"Certificate imported. {certificate.ca.name} signed it, so its CRL and OCSP "
            "answers cover it."
        )
    return (
        "Certificate imported as external: it is not linked to a portal CA, so revoking it "
        "will only mark this inventory."
    )


def _revoked_message(certificate: Certificate) -> str:
    if certificate.revocation_published:
        return "The certificate is revoked; its CA's CRL and OCSP answers will list it."
    return (
        "Marked revoked in this inventory only: the certificate is not linked to a portal "
        "CA, so no CRL or OCSP answer changes. Ask its issuer to revoke it."
    )


@login_required
@require_POST
def certificate_release_hold(request: HttpRequest, slug: str, pk: Any) -> HttpResponse:
    """Take a certificate off hold; the next CRL no longer lists it."""
    application = scoped_application(request, slug, permissions.REVOKE)
    certificate = _certificate(application, pk)
    try:
        services.release_hold(certificate, actor=actor_for(request))
    except services.RevocationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The hold is released; the next CRL no longer lists it.")
    return redirect("issuance:certificate", slug=application.name, pk=certificate.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def certificate_renew(request: HttpRequest, slug: str, pk: Any) -> HttpResponse:
    """Renew through the pipeline: same profile, subject and SANs; the old one is superseded
    once the new one exists (or the request waits for approval)."""
    application = scoped_application(request, slug, permissions.ISSUE)
    certificate = _certificate(application, pk)
    form = RenewForm(
        request.POST if request.method == "POST" else None, holds_key=certificate.has_private_key
    )
    context = application_context(request, application, "certificates")
    conflict = False
    if request.method == "POST" and form.is_valid():
        try:
            submission = services.renew(
                certificate,
                actor=actor_for(request),
                key_mode=form.cleaned_data["key"],
                csr=form.cleaned_data.get("csr") or None,
                method=EnrollmentMethod.UI,
            )
        except (services.RenewalError, services.IssuanceRejected) as exc:
            add_refusal_to_form(form, exc, fields={"csr": "csr"})
            conflict = exc.code in services.RENEWAL_CONFLICTS
        else:
            if submission.pending:
                messages.info(request, "The renewal is waiting for approval.")
                return redirect("issuance:certificate", slug=application.name, pk=certificate.pk)
            messages.success(request, "Renewed: this is the new certificate.")
            assert submission.certificate is not None
            return redirect(
                "issuance:certificate", slug=application.name, pk=submission.certificate.pk
            )
    context.update(certificate=certificate, form=form)
    status = 409 if conflict else 400 if form.errors else 200
    return render(request, "issuance/certificate_renew.html", context, status=status)


def _issue(request: HttpRequest, application: Application, form: IssueForm) -> Any:
    data = form.cleaned_data
    key_spec = None
    if data["mode"] == "keygen":
        key_spec = services.KeySpec(
            algorithm=data["key_algorithm"],
            common_name=data["common_name"].strip() or None,
            sans=form.san_list(),
        )
    return services.submit(
        application=application,
        profile=data["profile"],
        method=EnrollmentMethod.UI,
        actor=actor_for(request),
        csr=data["csr"] if data["mode"] == "csr" else None,
        key_spec=key_spec,
        validity_days=data.get("validity_days"),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def certificate_issue(request: HttpRequest, slug: str) -> HttpResponse:
    """Issue from the UI. A server-generated key is shown on the result page, once: that
    response is not stored by the browser, and the key is never shown again (the audited
    PKCS#12 download is the only way back to it)."""
    application = scoped_application(request, slug, permissions.ISSUE)
    profiles = application.profiles.filter(is_active=True)
    form = IssueForm(request.POST or None, profiles=profiles)
    context = application_context(request, application, "certificates")
    if request.method == "POST" and form.is_valid():
        try:
            submission = _issue(request, application, form)
        except services.IssuanceRejected as exc:
            add_refusal_to_form(form, exc, fields=REJECTION_FIELDS)
        else:
            context.update(submission=submission, certificate=submission.certificate)
            response = render(request, "issuance/certificate_issued.html", context)
            response["Cache-Control"] = "no-store"
            return response
    context.update(form=form, has_profiles=profiles.exists())
    status = 400 if form.errors else 200
    return render(request, "issuance/certificate_issue.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def certificate_import(request: HttpRequest, slug: str) -> HttpResponse:
    application = scoped_application(request, slug, permissions.ISSUE)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password = data["password"].encode() if data["password"] else None
        try:
            certificate = services.import_certificate(
                application,
                actor=actor_for(request),
                certificate_pem=data["certificate_pem"] or None,
                private_key_pem=data["private_key_pem"] or None,
                pkcs12=data["pkcs12"].read() if data["pkcs12"] else None,
                password=password,
            )
        except services.CertificateFileError as exc:
            add_refusal_to_form(form, exc)
        else:
            messages.success(request, _imported_message(certificate))
            return redirect("issuance:certificate", slug=application.name, pk=certificate.pk)
    context = application_context(request, application, "certificates")
    context["form"] = form
    status = 400 if form.errors else 200
    return render(request, "issuance/certificate_import.html", context, status=status)
