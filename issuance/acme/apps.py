from django.apps import AppConfig


class AcmeConfig(AppConfig):
    name = "issuance.acme"
    label = "acme"
    verbose_name = "ACME enrollment"
