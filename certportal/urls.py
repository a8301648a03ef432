from django.contrib import admin
from django.urls import include, path

from certportal import views

handler500 = "certportal.faults.server_error"

# Each app owns a distinct prefix for its own routes: applications (portal pages under
# applications/, cas/, profiles/, audit/), approvals (approvals/), alerts (its pages
# under applications/<slug>/alerts/), acme (acme/), est (.well-known/est/ and its pages
# under applications/<slug>/est/), scep (scep/), api (api/), issuance (pki/).
urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("certportal.account_urls")),
    path("admin/", admin.site.urls),
    path("api/", include("certportal.api_urls")),
    path("", include("issuance.urls")),
    path("", include("issuance.acme.urls")),
    path("", include("issuance.est.urls")),
    path("", include("issuance.scep.urls")),
    path("", include("approvals.urls")),
    path("", include("alerts.urls")),
    path("", include("syncs.urls")),
    path("", include("profiles.urls")),
    path("", include("applications.urls")),
]
