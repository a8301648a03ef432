from django.apps import AppConfig


class CertportalConfig(AppConfig):
    name = "certportal"
    verbose_name = "certportal core"
