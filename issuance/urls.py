from django.urls import path, re_path

from issuance import views
from issuance.ocsp import views as ocsp_views
from issuance.renewal import views as renewal_views

app_name = "issuance"

urlpatterns = [
    path("pki/ca/<slug:slug>.crt", views.ca_certificate, name="ca-certificate"),
    path("pki/ca/<slug:slug>.pem", views.ca_chain, name="ca-chain"),
    path("pki/crl/<slug:slug>.crl", views.crl, name="crl"),
    path("pki/ocsp/<slug:slug>", ocsp_views.ocsp_post, name="ocsp"),
    re_path(
        r"^pki/ocsp/(?P<slug>[-a-zA-Z0-9_]+)/(?P<encoded>.+)$", ocsp_views.ocsp_get, name="ocsp-get"
    ),
]

_CERT = "applications/<slug:slug>/certificates/"
urlpatterns += [
    path(_CERT, views.certificate_list, name="certificates"),
    path(_CERT + "export.csv", views.certificate_csv, name="certificates-csv"),
    path(_CERT + "issue/", views.certificate_issue, name="issue"),
    path(_CERT + "import/", views.certificate_import, name="import"),
    path(_CERT + "<uuid:pk>/", views.certificate_detail, name="certificate"),
    path(
        _CERT + "<uuid:pk>/download/<str:kind>.pem",
        views.certificate_download,
        name="download",
    ),
    path(_CERT + "<uuid:pk>/pkcs12/", views.certificate_pkcs12, name="pkcs12"),
    path(_CERT + "<uuid:pk>/revoke/", views.certificate_revoke, name="revoke"),
    path(_CERT + "<uuid:pk>/release-hold/", views.certificate_release_hold, name="release-hold"),
    path(_CERT + "<uuid:pk>/renew/", views.certificate_renew, name="renew"),
]

_RENEWAL = "applications/<slug:slug>/renewal/"
urlpatterns += [
    path(_RENEWAL, renewal_views.renewal_settings, name="renewal"),
    path(_RENEWAL + "<uuid:pk>/", renewal_views.certificate_renewal, name="certificate-renewal"),
]
