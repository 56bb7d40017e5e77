"""Django settings, read from the environment.

Outside demo mode the settings fail closed: ``SECRET_KEY`` and
``API_KEY_PEPPERS`` must be set, and ``DEBUG`` is off unless asked for.
``COMPLIANCE_DEMO=1`` (set by ``make run`` and the test settings) allows
built-in development secrets.
"""

import datetime
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    """Parse a boolean environment variable strictly: 1/true/yes or 0/false/no."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name, default, minimum=0):
    """Parse an integer environment variable strictly, with a lower bound."""
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEMO = env_bool("COMPLIANCE_DEMO")
DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEMO:
        raise ImproperlyConfigured(
            "SECRET_KEY is missing. Set it, or set COMPLIANCE_DEMO=1 for a demo."
        )
    SECRET_KEY = "demo-only-secret-key-never-use-in-production"  # noqa: S105

# API key secrets are stored as HMAC-SHA256 with a pepper kept apart from
# SECRET_KEY. It is a JSON object of pepper id to pepper, and new keys use the highest id.
_peppers_raw = os.environ.get("API_KEY_PEPPERS", "")
if _peppers_raw:
    try:
        API_KEY_PEPPERS = {int(k): str(v) for k, v in json.loads(_peppers_raw).items()}
    except (ValueError, AttributeError) as exc:
        raise ImproperlyConfigured(
            'API_KEY_PEPPERS must be a JSON object such as {"1": "long-random-string"}'
        ) from exc
elif DEMO:
    API_KEY_PEPPERS = {1: "demo-only-api-key-pepper"}
else:
    raise ImproperlyConfigured(
        "API_KEY_PEPPERS is missing. Set it, or set COMPLIANCE_DEMO=1 for a demo."
    )
if not API_KEY_PEPPERS:
    raise ImproperlyConfigured("API_KEY_PEPPERS must contain at least one pepper")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEMO or DEBUG else "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks_db",
    "compliance.tenancy",
    "compliance.catalog",
    "compliance.audit",
    "compliance.keys",
    "compliance.inventory",
    "compliance.checks",
    "compliance.reports",
    "compliance.api",
    "compliance.web",
    "compliance.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Sets the request id before authentication and before any view records an audit event.
    "compliance.audit.middleware.RequestIdMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "compliance.urls"
WSGI_APPLICATION = "compliance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "compliance.web.context_processors.tenant",
            ],
        },
    },
]

VAR_DIR = Path(os.environ.get("COMPLIANCE_VAR_DIR", BASE_DIR / "var"))

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server read while the worker writes a report.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:overview"
LOGOUT_REDIRECT_URL = "web:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# HTTPS=1 when the service is reached over TLS only, directly or behind a
# proxy: cookies become secure, HSTS is sent and plain HTTP is redirected.
HTTPS = env_bool("HTTPS")
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Preloading commits the domain to browsers' built-in lists, so it is opt-in.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
if env_bool("TRUST_X_FORWARDED_PROTO"):
    # Only behind a proxy that overwrites this header on every request.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy: scripts only from this origin, never inline; styles
# from this origin or a <style> element carrying the response's nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "compliance.keys.authentication.ApiKeyAuthentication",
        "compliance.keys.jwt.JwtAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["compliance.keys.throttles.ApiClientRateThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["compliance.api.permissions.HasTenantRole"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "compliance.api.negotiation.JsonContentNegotiation",
    "DEFAULT_PARSER_CLASSES": ["compliance.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "compliance.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "compliance.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# ---------------------------------------------------------------------------
# Background tasks. App code enqueues through django.tasks only, and
# TASKS_BACKEND selects where the queue lives and so which worker runs it.
#   db (default): django-tasks-db in the database, `manage.py db_worker`.
#   rq: django-tasks-rq on the Redis server at REDIS_URL,
#       `manage.py rqworker --job-class django_tasks_rq.Job default`.
# ---------------------------------------------------------------------------
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "").strip().lower() or "db"
TASKS_QUEUES = ["default"]

# How long a worker's claim on a generating report lasts, in seconds. A claim
# older than this means the worker stopped, so the reaper retries the report.
# The RQ backend also stops a job after this long.
REPORT_CLAIM_LEASE_SECONDS = env_int("REPORT_CLAIM_LEASE_SECONDS", 15 * 60, minimum=60)
# How many times the reaper retries a report whose worker stopped before it
# marks the report failed.
REPORT_GENERATION_RETRIES = env_int("REPORT_GENERATION_RETRIES", 2)
# Seconds after which a generating report that no worker has claimed is
# enqueued again, counted from its last enqueueing (or its creation).
REPORT_REQUEUE_AFTER_SECONDS = env_int("REPORT_REQUEUE_AFTER_SECONDS", 30 * 60, minimum=60)

if TASKS_BACKEND == "db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": TASKS_QUEUES}}
elif TASKS_BACKEND == "rq":
    REDIS_URL = os.environ.get("REDIS_URL", "")
    if not REDIS_URL:
        raise ImproperlyConfigured(
            "REDIS_URL is missing. TASKS_BACKEND=rq needs it, e.g. redis://127.0.0.1:6379/0."
        )
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {
        name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": REPORT_CLAIM_LEASE_SECONDS}
        for name in TASKS_QUEUES
    }
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": TASKS_QUEUES}}
else:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be db or rq, got {TASKS_BACKEND!r}.")

# The cache that stores the API rate-limit and login-failure counters. Without
# CACHE_URL each server process keeps its own counts in local memory. A Redis
# URL shares them between processes, so a limit applies across the deployment.
CACHE_URL = os.environ.get("CACHE_URL", "").strip()
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
elif CACHE_URL:
    raise ImproperlyConfigured(
        f"CACHE_URL must be a redis://, rediss:// or unix:// URL, got {CACHE_URL!r}."
    )

# The largest JSON request body the API accepts, and the largest uploaded
# scanner file, in bytes.
API_MAX_JSON_BYTES = 1024 * 1024
API_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_JSON_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = API_MAX_UPLOAD_BYTES

SPECTACULAR_SETTINGS = {
    "TITLE": "AI Compliance API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (BASE_DIR / "compliance" / "api" / "openapi_description.md").read_text(
        encoding="utf-8"
    ),
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "compliance.api.schema.add_error_responses",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "compliance.tenancy.models.Role",
        "CheckStatusEnum": "compliance.checks.models.CheckStatus",
        "FindingStatusEnum": "compliance.checks.models.FindingStatus",
        "ReportStatusEnum": "compliance.reports.models.ReportStatus",
        "SeverityEnum": "compliance.catalog.models.Severity",
        "EntityTypeEnum": "compliance.inventory.models.EntityType",
        "RegulationEnum": "compliance.catalog.models.Regulation",
        "AuditActionEnum": "compliance.audit.models.AuditAction",
        "AuditOutcomeEnum": "compliance.audit.models.AuditOutcome",
    },
}

# Reports whose period is at least this many days long are generated by the
# background worker; shorter ones are generated inside the request.
REPORT_SYNC_MAX_DAYS = 29
REPORT_MAX_DAYS = 731
# The earliest day a report may cover, so period arithmetic stays far from date.min.
REPORT_MIN_DATE = datetime.date(1970, 1, 1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"weasyprint": {"level": "ERROR"}, "fontTools": {"level": "ERROR"}},
}

# Serve files straight from the static folders as well, so a demo started
# without collectstatic still has its stylesheets and fonts.
WHITENOISE_USE_FINDERS = True

# Shown in page titles, the PDF cover and the PDF metadata.
PRODUCT_NAME = os.environ.get("PRODUCT_NAME", "AI Compliance")

# ---------------------------------------------------------------------------
# Audit trail, bearer-token (JWT) authentication and rate limits.
# ---------------------------------------------------------------------------


# How many reverse proxies in front of the app append to X-Forwarded-For.
# 0 trusts none, and the client address is REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Failed logins and failed API authentications recorded per client address
# and minute. Later ones that minute are counted in one warning log line.
AUDIT_UNAUTHENTICATED_EVENTS_PER_MINUTE = env_int("AUDIT_UNAUTHENTICATED_EVENTS_PER_MINUTE", 60)

# Bearer tokens: inert until one key source (PEM text, PEM file or local
# JWKS file) is set. See compliance/keys/jwt.py for the rules.
JWT_ALGORITHM = os.environ.get("JWT_ALGORITHM", "RS256")
JWT_PUBLIC_KEY = os.environ.get("JWT_PUBLIC_KEY", "")
JWT_PUBLIC_KEY_FILE = os.environ.get("JWT_PUBLIC_KEY_FILE", "")
JWT_JWKS_FILE = os.environ.get("JWT_JWKS_FILE", "")
JWT_ISSUER = os.environ.get("JWT_ISSUER", "")
JWT_AUDIENCE = env_list("JWT_AUDIENCE")
JWT_LEEWAY_SECONDS = env_int("JWT_LEEWAY_SECONDS", 30)
JWT_SUBJECT_FIELD = os.environ.get("JWT_SUBJECT_FIELD", "username")

# PAdES signatures of stored report PDFs: off while PDF_SIGNING_KEY is empty.
# The key is a PEM private key (with PDF_SIGNING_CERT) or a PKCS#12 bundle,
# and the system check in compliance/reports/signing.py loads both at startup.
PDF_SIGNING_KEY = os.environ.get("PDF_SIGNING_KEY", "")
PDF_SIGNING_CERT = os.environ.get("PDF_SIGNING_CERT", "")
PDF_SIGNING_PASSPHRASE = os.environ.get("PDF_SIGNING_PASSPHRASE", "")

# Requests per API key or bearer-token subject, in DRF's rate syntax. Empty
# disables the limit.
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "600/minute")

# The login page rejects further attempts (429) after this many failed ones
# for one username, or from one client address, within the window.
LOGIN_FAILURE_LIMIT_PER_USERNAME = env_int("LOGIN_FAILURE_LIMIT_PER_USERNAME", 5, minimum=1)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env_int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60, minimum=1)
