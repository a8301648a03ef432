from alerts.tests.conftest import http_receiver  # noqa: F401 - the shared HTTP receiver
