from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "certportal.api"
    label = "api"
    verbose_name = "REST API credentials"
