import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certportal.settings")
_django = get_wsgi_application()
# Import every view module now, as the worker boots, not while serving its first request.
_ = get_resolver().url_patterns

# Stored OCSP answers are served before Django's request handling (issuance/ocsp/wsgi.py).
from issuance.ocsp.wsgi import StoredAnswers  # noqa: E402 (needs the apps loaded)

application = StoredAnswers(_django)
