from django.apps import AppConfig


class OcspConfig(AppConfig):
    name = "issuance.ocsp"
    label = "ocsp"
    verbose_name = "OCSP responder"
