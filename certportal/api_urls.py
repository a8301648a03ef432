"""REST API (DRF) routes under /api/: v1 resources, the OpenAPI schema and its docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import SimpleRouter

from alerts.api.views import AlertRuleViewSet, ChannelViewSet, DeliveryViewSet
from applications.api.profiles import AttachedProfileViewSet
from applications.api.views import (
    ApplicationViewSet,
    AuditEventViewSet,
    MemberViewSet,
    ServiceAccountViewSet,
    TokenViewSet,
)
from approvals.api.views import ApprovalInboxViewSet, ApprovalPolicyViewSet, RequestDecisionViewSet
from certportal import csp
from certportal.api.views import not_found
from issuance.acme.api.views import AccountViewSet, ExternalAccountKeyViewSet
from issuance.api.views import CertificateViewSet
from issuance.est.api.views import EstEnrollmentViewSet
from issuance.renewal.api.views import CertificateRenewalViewSet, RenewalSettingsViewSet
from issuance.scep.api import ScepEnrollmentViewSet
from profiles.api.views import CertificateAuthorityViewSet, CertificateProfileViewSet
from syncs.api.views import ConnectionViewSet, SyncViewSet

app_name = "api"

router = SimpleRouter(trailing_slash=True)
router.register("applications", ApplicationViewSet, basename="application")
router.register("cas", CertificateAuthorityViewSet, basename="ca")
router.register("profiles", CertificateProfileViewSet, basename="profile")
router.register("tokens", TokenViewSet, basename="token")
router.register("events", AuditEventViewSet, basename="event")
router.register("approvals", ApprovalInboxViewSet, basename="approval")

app = "applications/<slug:slug>/"
nested = SimpleRouter(trailing_slash=True)
nested.register("members", MemberViewSet, basename="member")
nested.register("service-accounts", ServiceAccountViewSet, basename="service-account")
nested.register("certificates", CertificateViewSet, basename="certificate")
nested.register("requests", RequestDecisionViewSet, basename="request")
nested.register("approval-policies", ApprovalPolicyViewSet, basename="approval-policy")
nested.register("est-enrollments", EstEnrollmentViewSet, basename="est-enrollment")
nested.register("scep", ScepEnrollmentViewSet, basename="scep")
nested.register("connections", ConnectionViewSet, basename="sync-connection")
nested.register("syncs", SyncViewSet, basename="sync")
nested.register("alert-channels", ChannelViewSet, basename="alert-channel")
nested.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
nested.register("alert-deliveries", DeliveryViewSet, basename="alert-delivery")
nested.register("acme/eab-credentials", ExternalAccountKeyViewSet, basename="acme-eab-credential")
nested.register("acme/accounts", AccountViewSet, basename="acme-account")
nested.register("profiles", AttachedProfileViewSet, basename="attached-profile")

# One object per Application or certificate: read, replace (PUT) or change (PATCH).
SINGLE = {"get": "retrieve", "put": "update", "patch": "partial_update"}

urlpatterns = [
    path("v1/", include(router.urls)),
    path(
        f"v1/{app}renewal-settings/",
        RenewalSettingsViewSet.as_view(SINGLE),
        name="renewal-settings",
    ),
    path(
        f"v1/{app}certificates/<uuid:pk>/renewal-settings/",
        CertificateRenewalViewSet.as_view(SINGLE),
        name="certificate-renewal-settings",
    ),
    path(f"v1/{app}", include(nested.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, not inline.
    path(
        "docs/",
        csp.with_policy(csp.API_DOCS)(
            SpectacularSwaggerSplitView.as_view(
                url_name="api:schema", template_name="api/swagger_ui.html"
            )
        ),
        name="docs",
    ),
    path(
        "redoc/",
        csp.with_policy(csp.API_DOCS)(
            SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html")
        ),
        name="redoc",
    ),
    # Anything else under /api/ (e.g. an id that is not a UUID) is a JSON 404, not HTML.
    re_path(r"^[\s\S]*$", not_found),
]
