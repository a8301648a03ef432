from django.urls import path, re_path

from issuance import views

app_name = "issuance"

urlpatterns = [
    path("pki/ca/<slug:slug>.crt", views.ca_certificate, name="ca-certificate"),
    path("pki/ca/<slug:slug>.pem", views.ca_chain, name="ca-chain"),
    path("pki/crl/<slug:slug>.crl", views.crl, name="crl"),
    path("pki/ocsp/<slug:slug>", views.ocsp_post, name="ocsp"),
    re_path(
        r"^pki/ocsp/(?P<slug>[-a-zA-Z0-9_]+)/(?P<encoded>.+)$", views.ocsp_get, name="ocsp-get"
    ),
]
