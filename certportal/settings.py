"""certportal settings: one module, driven by the environment.

Every value comes through certportal.env parsers, which fail loudly at start on a bad
value. Embedded default: SQLite in ./data, django-q2 on the ORM broker, local-memory
cache. Scale-out: DATABASE_URL (PostgreSQL), REDIS_URL (cache, throttles, q2 broker).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from certportal import env

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.get_str("CERTPORTAL_DATA_DIR", str(BASE_DIR / "data")))

DEBUG = env.get_bool("CERTPORTAL_DEBUG", False)


def _local_secret(name: str, generate: Callable[[], str]) -> str:
    """Debug mode only: a secret kept in DATA_DIR, made on first use (0600)."""
    path = DATA_DIR / name
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate())
    return path.read_text().strip()


SECRET_KEY = env.get_str("CERTPORTAL_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CERTPORTAL_SECRET_KEY (or CERTPORTAL_SECRET_KEY_FILE) is required when "
            "CERTPORTAL_DEBUG is off"
        )
    SECRET_KEY = _local_secret("secret_key", lambda: secrets.token_urlsafe(50))

# Key-encryption key for secrets at rest (CA keys, server-generated keys, credentials):
# 32 random bytes, base64. Previous keys stay readable during a rotation (rotate_kek).
CERTPORTAL_KEK = env.get_str("CERTPORTAL_KEK")
if not CERTPORTAL_KEK:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CERTPORTAL_KEK (or CERTPORTAL_KEK_FILE) is required when CERTPORTAL_DEBUG is off: "
            "generate one with `openssl rand -base64 32`"
        )
    CERTPORTAL_KEK = _local_secret(
        "kek", lambda: base64.b64encode(secrets.token_bytes(32)).decode()
    )
CERTPORTAL_KEK = env.check_base64_key("CERTPORTAL_KEK", CERTPORTAL_KEK)
CERTPORTAL_KEK_PREVIOUS = [
    env.check_base64_key("CERTPORTAL_KEK_PREVIOUS", k)
    for k in env.get_list("CERTPORTAL_KEK_PREVIOUS", [])
]

CERTPORTAL_BASE_URL = env.get_url("CERTPORTAL_BASE_URL", "http://127.0.0.1:8000")
_HTTPS = CERTPORTAL_BASE_URL.startswith("https://")

ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.get_list("CERTPORTAL_CSRF_TRUSTED_ORIGINS", [CERTPORTAL_BASE_URL])

INSTALLED_APPS = [
    "certportal.admin_apps.PortalAdminConfig",  # django.contrib.admin, throttled login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_q",
    "certportal",
    "certportal.api",
    "applications",
    "profiles",
    "issuance",
    "issuance.acme",
    "issuance.est",
    "issuance.scep",
    "issuance.ocsp",
    "approvals",
    "alerts",
    "syncs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "certportal.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "certportal.urls"
WSGI_APPLICATION = "certportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env.get_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'certportal.sqlite3'}"),
        conn_max_age=env.get_int("CERTPORTAL_DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=env.get_bool("CERTPORTAL_DB_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server and the q2 cluster read while one writes;
        # IMMEDIATE takes the write lock up front so writers queue instead of failing.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameter binding: parameters travel apart from the SQL instead of
    # being quoted into it (docs/performance.md).
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["server_side_binding"] = env.get_bool("CERTPORTAL_DB_SERVER_SIDE_BINDING", True)

# PostgreSQL: the issuance pipeline writes its rows of several tables in one statement
# (certportal.db.rows); false writes them with the plain ORM (docs/performance.md).
CERTPORTAL_DB_ONE_STATEMENT_WRITES = env.get_bool("CERTPORTAL_DB_ONE_STATEMENT_WRITES", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.get_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER: dict[str, object] = {
    "name": "certportal",
    "workers": env.get_int("CERTPORTAL_Q_WORKERS", 2, minimum=1),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    # Successful task results are not stored by default (-1): at issuance rates the
    # monitor's INSERT and pruning per task competes with the work itself. Failures are
    # always stored. Set a positive number to keep that many recent successes.
    "save_limit": env.get_int("CERTPORTAL_Q_SAVE_LIMIT", -1, minimum=-1),
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_MONKEY_PATCH_USER = False  # STYLE.md rule 3 (guardian 3 renamed GUARDIAN_MONKEY_PATCH)
ANONYMOUS_USER_NAME = None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_MANIFEST_STRICT = False

# Hardening. HTTPS-only settings follow the public URL's scheme; CRL, OCSP and CA
# certificate URLs stay reachable over plain HTTP (RFC 5280 / RFC 6960 relying parties
# fetch them without TLS, and TLS to check TLS revocation would be circular).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.get_int("CERTPORTAL_SESSION_AGE", 8 * 3600, minimum=300)
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_SSL_REDIRECT = _HTTPS and env.get_bool("CERTPORTAL_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^pki/"]
SECURE_HSTS_SECONDS = env.get_int("CERTPORTAL_HSTS_SECONDS", 31536000 if _HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _HTTPS
SECURE_HSTS_PRELOAD = env.get_bool("CERTPORTAL_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.get_bool("CERTPORTAL_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# PKI behaviour.
CERTPORTAL_CRL_VALIDITY_HOURS = env.get_int("CERTPORTAL_CRL_VALIDITY_HOURS", 24, minimum=1)
CERTPORTAL_CRL_REFRESH_MARGIN_HOURS = env.get_int(
    "CERTPORTAL_CRL_REFRESH_MARGIN_HOURS", 6, minimum=0
)
CERTPORTAL_OCSP_VALIDITY_HOURS = env.get_int("CERTPORTAL_OCSP_VALIDITY_HOURS", 12, minimum=1)
# "delegated": a short-lived OCSP-signing certificate per CA signs responses (default);
# "ca": the CA key signs them directly.
CERTPORTAL_OCSP_RESPONDER = env.get_str("CERTPORTAL_OCSP_RESPONDER", "delegated")
if CERTPORTAL_OCSP_RESPONDER not in ("delegated", "ca"):
    raise ImproperlyConfigured(
        f"CERTPORTAL_OCSP_RESPONDER={CERTPORTAL_OCSP_RESPONDER!r} must be 'delegated' or 'ca'"
    )
CERTPORTAL_APPROVAL_EXPIRY_DAYS = env.get_int("CERTPORTAL_APPROVAL_EXPIRY_DAYS", 7, minimum=1)
if CERTPORTAL_CRL_REFRESH_MARGIN_HOURS >= CERTPORTAL_CRL_VALIDITY_HOURS:
    raise ImproperlyConfigured(
        "CERTPORTAL_CRL_REFRESH_MARGIN_HOURS must be shorter than CERTPORTAL_CRL_VALIDITY_HOURS"
    )

CERTPORTAL_API_RATE = env.get_str("CERTPORTAL_API_RATE", "1200/min")
if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", CERTPORTAL_API_RATE):
    raise ImproperlyConfigured(
        f"CERTPORTAL_API_RATE={CERTPORTAL_API_RATE!r}: use <count>/<s|min|hour|day>"
    )
# REST API (certportal/api/): bearer tokens or the browser session (with CSRF), one error
# format, page-number pagination, per-token throttling in the cache (Redis with REDIS_URL).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "certportal.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "certportal.api.pagination.ApiPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["certportal.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": CERTPORTAL_API_RATE},
    "EXCEPTION_HANDLER": "certportal.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "certportal API",
    "DESCRIPTION": "Certificate lifecycle automation: issue, renew, revoke, approve, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "certportal.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "KeyAlgorithmEnum": "profiles.choices.KeyAlgorithm",
        "RevocationReasonEnum": "issuance.choices.RevocationReason",
        "RoleEnum": "applications.choices.Role",
        "CertificateStatusEnum": "issuance.choices.CertificateStatus",
        "CAStatusEnum": "profiles.choices.CAStatus",
        "CAKindEnum": "profiles.choices.CAKind",
        "ConnectionKindEnum": "syncs.choices.ConnectionKind",
        "ChannelKindEnum": "alerts.choices.ChannelKind",
        "AlertEventEnum": "alerts.choices.AlertEvent",
        "PendingStatusEnum": ["pending_approval"],
        "SettableCAStatusEnum": ["active", "disabled"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.get_str("CERTPORTAL_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-q logs every enqueue at INFO: one line per issuance on a busy portal.
        "django-q": {"level": env.get_str("CERTPORTAL_Q_LOG_LEVEL", "WARNING")},
    },
}

# --- Alerting and renewal ------------------------------------------------------------------
# Email: CERTPORTAL_EMAIL_URL (smtp://user:pass@host:587?starttls=1, smtps://host:465)
# or the EMAIL_HOST / EMAIL_PORT / EMAIL_HOST_USER / EMAIL_HOST_PASSWORD(_FILE) /
# EMAIL_USE_TLS / EMAIL_USE_SSL variables.
_EMAIL_URL = env.get_str("CERTPORTAL_EMAIL_URL")
if _EMAIL_URL:
    from urllib.parse import parse_qs, unquote, urlparse

    _email = urlparse(_EMAIL_URL)
    if _email.scheme not in ("smtp", "smtps") or not _email.hostname:
        raise ImproperlyConfigured(
            "CERTPORTAL_EMAIL_URL must look like smtp://user:password@host:port or smtps://..."
        )
    try:
        _email_port = _email.port
    except ValueError as exc:
        raise ImproperlyConfigured("CERTPORTAL_EMAIL_URL has an invalid port") from exc
    EMAIL_HOST = _email.hostname
    EMAIL_USE_SSL = _email.scheme == "smtps"
    EMAIL_PORT = _email_port or (465 if EMAIL_USE_SSL else 25)
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_TLS = parse_qs(_email.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
else:
    EMAIL_HOST = env.get_str("EMAIL_HOST", "localhost")
    EMAIL_PORT = env.get_int("EMAIL_PORT", 25, minimum=1)
    EMAIL_HOST_USER = env.get_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env.get_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env.get_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env.get_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
EMAIL_TIMEOUT = env.get_int("CERTPORTAL_EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env.get_str("CERTPORTAL_EMAIL_FROM", "certportal@localhost")
# Alerts use this backend explicitly (tests swap EMAIL_BACKEND for locmem; alerts still
# speak SMTP, to a test server).
CERTPORTAL_ALERT_EMAIL_BACKEND = env.get_str(
    "CERTPORTAL_ALERT_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"
)
# How long a worker holds an alert it is sending before another may take it over.
CERTPORTAL_ALERT_SEND_LEASE_SECONDS = env.get_int(
    "CERTPORTAL_ALERT_SEND_LEASE_SECONDS", 120, minimum=1
)
# The outbox sweeper takes events left undispatched this long after they were written.
CERTPORTAL_OUTBOX_SWEEP_GRACE_SECONDS = env.get_int(
    "CERTPORTAL_OUTBOX_SWEEP_GRACE_SECONDS", 30, minimum=1
)
# Issuance caches each Application's profiles (with CA and approval-policy presence) per
# process for at most this long; with Redis a change anywhere invalidates them at once,
# without it other processes see a change within this time (certportal.generation).
CERTPORTAL_CONFIG_CACHE_SECONDS = env.get_int("CERTPORTAL_CONFIG_CACHE_SECONDS", 2, minimum=0)
# Certificates renewed per transaction (one pipeline call) by the renewal sweep.
CERTPORTAL_RENEWAL_BATCH = env.get_int("CERTPORTAL_RENEWAL_BATCH", 100, minimum=1)
# A distinct cluster name keeps separate deployments (or test runs) on one Redis apart.
Q_CLUSTER["name"] = env.get_str("CERTPORTAL_Q_NAME", str(Q_CLUSTER["name"]))

# Outbound requests (certportal.outbound: alert channels, the ACME validator, syncs) refuse
# loopback, private, link-local and translated addresses unless this is set (labs, tests).
# CERTPORTAL_ACME_ALLOW_PRIVATE is its former name, still read when this one is unset.
CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = env.get_bool(
    "CERTPORTAL_OUTBOUND_ALLOW_PRIVATE", env.get_bool("CERTPORTAL_ACME_ALLOW_PRIVATE", False)
)

# Syncs: attempts before a failing push stops (and raises sync_failed), how long a worker
# holds an item it pushes, and an extra CA bundle for SDK TLS verification (a lab's
# private CA in front of an AWS-compatible, Key Vault or Cloudflare-compatible endpoint).
CERTPORTAL_SYNC_MAX_ATTEMPTS = env.get_int("CERTPORTAL_SYNC_MAX_ATTEMPTS", 8, minimum=1)
CERTPORTAL_SYNC_LEASE_SECONDS = env.get_int("CERTPORTAL_SYNC_LEASE_SECONDS", 300, minimum=10)
CERTPORTAL_SYNC_CA_BUNDLE = env.get_str("CERTPORTAL_SYNC_CA_BUNDLE", "")

# ACME. Challenge ports and the resolver are the server's choice, never the
# client's; tests use port 5002, a test DNS server and allow private addresses.
CERTPORTAL_ACME_HTTP01_PORT = env.get_int("CERTPORTAL_ACME_HTTP01_PORT", 80, minimum=1)
CERTPORTAL_ACME_TLSALPN01_PORT = env.get_int("CERTPORTAL_ACME_TLSALPN01_PORT", 443, minimum=1)
# host:port of the DNS server for dns-01 TXT and http-01/tls-alpn-01 targets; empty = system.
CERTPORTAL_ACME_DNS_RESOLVER = env.get_str("CERTPORTAL_ACME_DNS_RESOLVER", "")
if CERTPORTAL_ACME_DNS_RESOLVER and not CERTPORTAL_ACME_DNS_RESOLVER.rpartition(":")[2].isdigit():
    raise ImproperlyConfigured(
        f"CERTPORTAL_ACME_DNS_RESOLVER={CERTPORTAL_ACME_DNS_RESOLVER!r} is not host:port"
    )
CERTPORTAL_ACME_NONCE_LIFETIME_SECONDS = env.get_int(
    "CERTPORTAL_ACME_NONCE_LIFETIME_SECONDS", 3600, minimum=10
)
CERTPORTAL_ACME_ORDER_LIFETIME_HOURS = env.get_int(
    "CERTPORTAL_ACME_ORDER_LIFETIME_HOURS", 24, minimum=1
)
CERTPORTAL_ACME_MAX_BODY_BYTES = env.get_int("CERTPORTAL_ACME_MAX_BODY_BYTES", 65536, minimum=4096)
# With Redis, the challenge POST waits up to this long for the worker's verdict, so a
# fast validation answers "valid" at once (lego then skips polling); 0 never waits.
CERTPORTAL_ACME_VALIDATION_WAIT_MS = env.get_int(
    "CERTPORTAL_ACME_VALIDATION_WAIT_MS", 500, minimum=0
)
CERTPORTAL_ACME_RETRY_AFTER_SECONDS = env.get_int(
    "CERTPORTAL_ACME_RETRY_AFTER_SECONDS", 1, minimum=1
)
CERTPORTAL_ACME_ARI_RETRY_AFTER_SECONDS = env.get_int(
    "CERTPORTAL_ACME_ARI_RETRY_AFTER_SECONDS", 6 * 3600, minimum=60
)
# ACME limits: refused with a rateLimited problem document and Retry-After (RFC 8555
# 6.6). Rates are <count>/<period> or off; newAccount and newOrder counts live in the
# cache (shared with REDIS_URL, per web process without), failed validations are read
# from the challenges in the database.
CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_SOURCE = env.get_rate(
    "CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_SOURCE", "20/hour"
)
CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_APPLICATION = env.get_rate(
    "CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_APPLICATION", "100/hour"
)
CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT = env.get_rate(
    "CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT", "300/hour"
)
CERTPORTAL_ACME_NEW_ORDER_RATE_PER_APPLICATION = env.get_rate(
    "CERTPORTAL_ACME_NEW_ORDER_RATE_PER_APPLICATION", "3000/hour"
)
CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_ACCOUNT = env.get_rate(
    "CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_ACCOUNT", "60/hour"
)
CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_APPLICATION = env.get_rate(
    "CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_APPLICATION", "600/hour"
)
CERTPORTAL_ACME_MAX_PENDING_AUTHORIZATIONS = env.get_int(
    "CERTPORTAL_ACME_MAX_PENDING_AUTHORIZATIONS", 300, minimum=1
)
# Challenge validation runs on its own django-q2 queue, so a slow or hostile responder
# ties up only the validation workers, never renewals, CRLs or alerts. Start them with
# Q_CLUSTER_NAME=<CERTPORTAL_Q_NAME>-acme manage.py qcluster (scripts/run.sh does); off
# puts validation back on the main cluster.
CERTPORTAL_ACME_VALIDATION_CLUSTER = (
    f"{Q_CLUSTER['name']}-acme"
    if env.get_bool("CERTPORTAL_ACME_VALIDATION_OWN_QUEUE", True)
    else None
)
Q_CLUSTER["ALT_CLUSTERS"] = {
    f"{Q_CLUSTER['name']}-acme": {
        "workers": env.get_int("CERTPORTAL_ACME_VALIDATION_WORKERS", 2, minimum=1),
    }
}
CERTPORTAL_ACME_TERMS_URL = env.get_str("CERTPORTAL_ACME_TERMS_URL", "")
CERTPORTAL_ACME_TERMS_TEXT = env.get_str(
    "CERTPORTAL_ACME_TERMS_TEXT",
    "Certificates from this portal are for the Application's own services only.",
)

# EST (RFC 7030): the header a TLS-terminating proxy puts the client certificate in
# (URL-escaped PEM, nginx $ssl_client_escaped_cert), read only from
# CERTPORTAL_TRUSTED_PROXIES; empty: client certificates are not read at all.
CERTPORTAL_EST_CLIENT_CERT_HEADER = env.get_str("CERTPORTAL_EST_CLIENT_CERT_HEADER", "")
CERTPORTAL_EST_MAX_BODY_BYTES = env.get_int("CERTPORTAL_EST_MAX_BODY_BYTES", 65536, minimum=4096)
CERTPORTAL_EST_RETRY_AFTER_SECONDS = env.get_int(
    "CERTPORTAL_EST_RETRY_AFTER_SECONDS", 60, minimum=1
)

# Logins, client addresses and API token lifetime.
# Reverse proxies whose X-Forwarded-For is believed (IPs or CIDRs): only when the peer
# is one of them is the client taken from that header (certportal.clientip).
CERTPORTAL_TRUSTED_PROXIES = env.get_list("CERTPORTAL_TRUSTED_PROXIES", [])
for _proxy in CERTPORTAL_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"CERTPORTAL_TRUSTED_PROXIES: {_proxy!r} is not an IP address or network"
        ) from exc
# Password reset mails a link, so it is offered only when mail really leaves the host:
# SMTP configured through the environment (console/locmem backends count in debug only).
CERTPORTAL_EMAIL_CONFIGURED = bool(_EMAIL_URL or env.get_str("EMAIL_HOST"))
# Longest lifetime of a new API token in days; 0 = no maximum.
CERTPORTAL_API_TOKEN_MAX_DAYS = env.get_int("CERTPORTAL_API_TOKEN_MAX_DAYS", 0, minimum=0)
# Faults: a database or Redis outage answers 503 with Retry-After in each front's format
# (certportal.faults); connections give up quickly instead of hanging a worker.
CERTPORTAL_OUTAGE_RETRY_AFTER_SECONDS = env.get_int(
    "CERTPORTAL_OUTAGE_RETRY_AFTER_SECONDS", 5, minimum=1
)
MIDDLEWARE.insert(0, "certportal.faults.OutageMiddleware")
MIDDLEWARE[MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")] = (
    "certportal.faults.SessionMiddleware"
)
_CONNECT_TIMEOUT = env.get_int("CERTPORTAL_CONNECT_TIMEOUT", 3, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", _CONNECT_TIMEOUT)
if REDIS_URL:
    # Reads wait longer than the longest BLPOP the portal makes (certportal.wakeups).
    _REDIS_TIMEOUTS = {
        "socket_connect_timeout": _CONNECT_TIMEOUT,
        "socket_timeout": _CONNECT_TIMEOUT + 5 + CERTPORTAL_ACME_VALIDATION_WAIT_MS // 1000,
    }
    CACHES["default"]["OPTIONS"] = _REDIS_TIMEOUTS  # type: ignore[assignment]
    Q_CLUSTER["redis"] = (
        REDIS_URL
        + ("&" if "?" in REDIS_URL else "?")
        + "&".join(f"{name}={value}" for name, value in _REDIS_TIMEOUTS.items())
    )
# On SIGTERM the qcluster hands back to the broker what it has not finished within this
# many seconds (certportal.cluster); certportal's qcluster command replaces django-q2's,
# so certportal comes before django_q.
CERTPORTAL_Q_STOP_SECONDS = env.get_int("CERTPORTAL_Q_STOP_SECONDS", 8, minimum=1)
INSTALLED_APPS.remove("certportal")
INSTALLED_APPS.insert(INSTALLED_APPS.index("django_q"), "certportal")
