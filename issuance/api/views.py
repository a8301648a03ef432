"""Certificate and request endpoints under /api/v1/applications/{slug}/."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from certportal import permissions as perms
from certportal.api.errors import field_error
from certportal.api.renderers import PemRenderer, Pkcs12Renderer
from certportal.api.scoping import ApplicationScopedMixin
from certportal.web import actor_for, attachment
from issuance import services
from issuance.api import serializers as s
from issuance.choices import EnrollmentMethod, KeyMode
from issuance.inventory import filter_certificates
from issuance.models import Certificate, CertificateRequest
from issuance.renewal import window

# Pipeline rejection fields that name an input of the issue call, per kind of ask.
_FIELD_WITH_CSR = {"profile": "profile", "validity_days": "validity_days"}
_FIELD_WITH_SPEC = {
    "profile": "profile",
    "validity_days": "validity_days",
    "key": "key_algorithm",
    "key_algorithm": "key_algorithm",
    "subject": "common_name",
    "sans": "sans",
}


def rejected(exc: services.IssuanceRejected, *, with_csr: bool) -> services.IssuanceRejected:
    """The pipeline's refusal naming this API's input: with a CSR, whatever the CSR
    decided is the ``csr`` field. The exception handler renders it."""
    mapping = _FIELD_WITH_CSR if with_csr else _FIELD_WITH_SPEC
    default = "csr" if with_csr else None
    return exc.on_field(mapping.get(exc.field or "", default))


def issued_response(request: Request, slug: str, submission: services.Submission) -> Response:
    if submission.pending or submission.certificate is None:
        url = reverse(
            "api:request-detail",
            kwargs={"slug": slug, "pk": submission.request.pk},
            request=request,
        )
        body = {
            "request_id": submission.request.pk,
            "status": submission.request.state,
            "expires_at": submission.request.expires_at,
            "request_url": url,
        }
        return Response(s.PendingSerializer(body).data, status=status.HTTP_202_ACCEPTED)
    context = {"private_key_pem": submission.private_key_pem}
    data = s.IssuedCertificateSerializer(submission.certificate, context=context).data
    return Response(data, status=status.HTTP_201_CREATED)


ISSUE_RESPONSES = {
    201: s.IssuedCertificateSerializer,
    202: s.PendingSerializer,
}


@extend_schema_view(
    list=extend_schema(parameters=[s.CertificateFilterSerializer], summary="List certificates"),
    retrieve=extend_schema(summary="Show a certificate"),
)
class CertificateViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """An Application's certificates: list, show, issue, renew, revoke, download."""

    serializer_class = s.CertificateSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    action_permissions = {
        "create": perms.ISSUE,
        "renew": perms.ISSUE,
        "revoke": perms.REVOKE,
        "release_hold": perms.REVOKE,
        "pkcs12": perms.DOWNLOAD_KEY,
        "import_certificate": perms.ISSUE,
    }

    def get_queryset(self) -> QuerySet[Certificate]:
        if getattr(self, "swagger_fake_view", False):
            return Certificate.objects.none()
        base = (
            Certificate.objects.filter(application=self.get_application())
            .select_related("ca", "profile")
            .defer("ca__crl_der")  # a CRL of 100k entries is megabytes, joined per row
        )
        if self.action != "list":
            return base
        params = s.CertificateFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return filter_certificates(base, **params.validated_data)

    @extend_schema(
        request=s.ImportSerializer,
        responses={201: s.CertificateSerializer},
        summary="Import an existing certificate",
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_certificate(self, request: Request, slug: str) -> Response:
        """A PEM bundle with an optional key, or a PKCS#12 file (base64), into the
        inventory, as the portal's import page does."""
        ask = s.ImportSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        password = data.get("password") or ""
        certificate = services.import_certificate(
            self.get_application(),
            actor=actor_for(request),
            certificate_pem=data.get("certificate_pem") or None,
            private_key_pem=data.get("private_key_pem") or None,
            pkcs12=data.get("pkcs12") or None,
            password=password.encode() or None,
        )
        body = s.CertificateSerializer(certificate, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.IssueSerializer, responses=ISSUE_RESPONSES, summary="Issue")
    def create(self, request: Request, slug: str) -> Response:
        application = self.get_application()
        ask = s.IssueSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        found = services.attached_profile(application, data["profile"])
        if found is None:
            raise field_error("profile", "unknown_profile", "No such profile in this Application.")
        key_spec = None
        if "key_algorithm" in data:
            key_spec = services.KeySpec(
                algorithm=data["key_algorithm"],
                common_name=data.get("common_name") or None,
                sans=data.get("sans", []),
            )
        try:
            submission = services.submit(
                application=application,
                profile=found,
                method=EnrollmentMethod.API,
                actor=actor_for(request),
                csr=data.get("csr"),
                key_spec=key_spec,
                validity_days=data.get("validity_days"),
            )
        except services.IssuanceRejected as exc:
            raise rejected(exc, with_csr=key_spec is None) from exc
        if submission.certificate is not None:
            submission.certificate.profile = found.profile  # already loaded: no query to render it
        return issued_response(request, slug, submission)

    @extend_schema(request=s.RenewSerializer, responses=ISSUE_RESPONSES, summary="Renew")
    @action(detail=True, methods=["post"])
    def renew(self, request: Request, slug: str, pk: str) -> Response:
        certificate = self.get_object()
        ask = s.RenewSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        try:
            submission = services.renew(
                certificate,
                actor=actor_for(request),
                key_mode=ask.validated_data["key"],
                csr=ask.validated_data.get("csr"),
            )
        except services.RenewalError as exc:
            raise exc.on_field("key") from exc  # the key mode decides what renewal needs
        except services.IssuanceRejected as exc:
            raise rejected(exc, with_csr=ask.validated_data["key"] == KeyMode.CSR) from exc
        return issued_response(request, slug, submission)

    @extend_schema(request=s.RevokeSerializer, responses={200: s.CertificateSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, slug: str, pk: str) -> Response:
        certificate = self.get_object()
        ask = s.RevokeSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        services.revoke(certificate, reason=ask.validated_data["reason"], actor=actor_for(request))
        return Response(s.CertificateSerializer(certificate).data)

    @extend_schema(
        request=None,
        responses={200: s.CertificateSerializer},
        summary="Release a certificate hold (the next CRL no longer lists it)",
    )
    @action(detail=True, methods=["post"], url_path="release-hold")
    def release_hold(self, request: Request, slug: str, pk: str) -> Response:
        certificate = self.get_object()
        services.release_hold(certificate, actor=actor_for(request))
        return Response(s.CertificateSerializer(certificate).data)

    @extend_schema(
        responses={200: s.RenewalWindowSerializer},
        summary="Suggested renewal window (the renewal sweep's and ACME ARI's)",
    )
    @action(detail=True, methods=["get"], url_path="renewal-window")
    def renewal_window(self, request: Request, slug: str, pk: str) -> Response:
        certificate = self.get_object()
        start, end = window.renewal_window(certificate)
        body = {
            "certificate": certificate.pk,
            "status": certificate.status,
            "start": start,
            "end": end,
        }
        return Response(s.RenewalWindowSerializer(body).data)

    @extend_schema(
        responses={(200, PemRenderer.media_type): OpenApiTypes.STR}, summary="Certificate PEM"
    )
    @action(detail=True, methods=["get"], renderer_classes=[PemRenderer])
    def pem(self, request: Request, slug: str, pk: str) -> HttpResponse:
        certificate = self.get_object()
        return _pem_file(certificate, certificate.certificate_pem)

    @extend_schema(
        responses={(200, PemRenderer.media_type): OpenApiTypes.STR},
        summary="Certificate and issuer chain, PEM",
    )
    @action(detail=True, methods=["get"], renderer_classes=[PemRenderer])
    def chain(self, request: Request, slug: str, pk: str) -> HttpResponse:
        certificate = self.get_object()
        chain = s.certificate_chain(certificate)
        return _pem_file(certificate, certificate.certificate_pem.strip() + "\n" + chain)

    @extend_schema(
        request=s.Pkcs12Serializer,
        responses={(200, Pkcs12Renderer.media_type): OpenApiTypes.BINARY},
        summary="Certificate, chain and held key as PKCS#12 (audited)",
    )
    @action(detail=True, methods=["post"], renderer_classes=[Pkcs12Renderer])
    def pkcs12(self, request: Request, slug: str, pk: str) -> HttpResponse:
        certificate = self.get_object()
        ask = s.Pkcs12Serializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = services.export_pkcs12(
            certificate, password=ask.validated_data["password"], actor=actor_for(request)
        )
        response = HttpResponse(data, content_type=Pkcs12Renderer.media_type)
        return attachment(response, _download_name(certificate), "p12")


def _download_name(certificate: Certificate) -> str:
    return certificate.common_name or certificate.serial_number


def _pem_file(certificate: Certificate, body: str) -> HttpResponse:
    response = HttpResponse(body, content_type=PemRenderer.media_type)
    return attachment(response, _download_name(certificate), "pem")


@extend_schema_view(
    list=extend_schema(parameters=[s.RequestFilterSerializer], summary="List requests"),
    retrieve=extend_schema(summary="Show a request and, once issued, its certificate"),
)
class CertificateRequestViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """An Application's certificate requests (approvals' API adds its decisions)."""

    serializer_class = s.CertificateRequestSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self) -> QuerySet[CertificateRequest]:
        if getattr(self, "swagger_fake_view", False):
            return CertificateRequest.objects.none()
        base = CertificateRequest.objects.filter(application=self.get_application()).select_related(
            "profile"
        )
        if self.action == "list":
            params = s.RequestFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            if params.validated_data.get("state"):
                base = base.filter(state=params.validated_data["state"])
        return base
