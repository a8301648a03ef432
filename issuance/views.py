"""Public PKI endpoints: CA certificates, CRLs and OCSP. No login: relying parties call them."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from issuance import revocation
from pki import export, ocsp
from profiles.choices import CAStatus
from profiles.models import CertificateAuthority


def _published_ca(slug: str) -> CertificateAuthority:
    return get_object_or_404(
        CertificateAuthority.objects.exclude(status=CAStatus.PENDING_CERTIFICATE), slug=slug
    )


@require_GET
def ca_certificate(request: HttpRequest, slug: str) -> HttpResponse:
    """The CA certificate in DER: the caIssuers URL of the AIA extension."""
    ca = _published_ca(slug)
    response = HttpResponse(export.der(ca.certificate()), content_type="application/pkix-cert")
    response["Content-Disposition"] = f'attachment; filename="{ca.slug}.crt"'
    return response


@require_GET
def ca_chain(request: HttpRequest, slug: str) -> HttpResponse:
    """The CA certificate and the ones above it, as PEM."""
    ca = _published_ca(slug)
    return HttpResponse(ca.chain_pem_with_self(), content_type="application/pem-certificate-chain")


@require_GET
def crl(request: HttpRequest, slug: str) -> HttpResponse:
    ca = _published_ca(slug)
    response = HttpResponse(revocation.current_crl(ca), content_type="application/pkix-crl")
    response["Cache-Control"] = "public, max-age=300"
    return response


def _ocsp_reply(body: bytes, *, cacheable: bool) -> HttpResponse:
    response = HttpResponse(body, content_type="application/ocsp-response")
    if cacheable:
        response["Cache-Control"] = "public, max-age=60"
    return response


@csrf_exempt
@require_http_methods(["POST"])
def ocsp_post(request: HttpRequest, slug: str) -> HttpResponse:
    ca = _published_ca(slug)
    body = request.body
    if len(body) > ocsp.MAX_OCSP_REQUEST_BYTES:
        return _ocsp_reply(ocsp.ocsp_error_response("malformed_request"), cacheable=False)
    return _ocsp_reply(revocation.ocsp_response(ca, body), cacheable=False)


@require_GET
def ocsp_get(request: HttpRequest, slug: str, encoded: str) -> HttpResponse:
    """RFC 6960 appendix A.1: the DER request, base64, URL-encoded, as the last path part."""
    ca = _published_ca(slug)
    text = unquote(encoded)
    if len(text) > ocsp.MAX_OCSP_REQUEST_BYTES * 2:
        return _ocsp_reply(ocsp.ocsp_error_response("malformed_request"), cacheable=False)
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return _ocsp_reply(ocsp.ocsp_error_response("malformed_request"), cacheable=False)
    return _ocsp_reply(revocation.ocsp_response(ca, der), cacheable=True)
