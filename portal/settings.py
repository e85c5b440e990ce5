"""Atrium's one settings module: every value comes from the environment (or `.env`).

It is long, and one file on purpose: an operator reads every setting, its default and the check
that refuses a bad value in one place.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.dateparse import parse_duration

from portal.durations import LONGEST as LONGEST_GRANT

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("ATRIUM_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
# A `.env` beside manage.py is read too; variables already in the environment win.
environ.Env.read_env(env.str("ATRIUM_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _secret_key() -> str:
    configured = env.str("SECRET_KEY", default="")
    if configured:
        return configured
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set the SECRET_KEY environment variable: it is required when DEBUG is off."
        )
    # Dev only: one key per checkout, kept so that sessions survive a restart.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

# .env.example's placeholders must be replaced before production starts (the value stays unsaid).
for _name in ("SECRET_KEY", "POSTGRES_PASSWORD"):
    if not DEBUG and os.environ.get(_name, "").startswith("change-me"):
        raise ImproperlyConfigured(
            f"{_name} is still the placeholder from .env.example (it starts with 'change-me'): "
            "set it to a long random value, e.g. from `openssl rand -base64 36`."
        )

# --- The portal's public origin -------------------------------------------------------------

PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
_base = urlsplit(PORTAL_BASE_URL)
if _base.scheme not in {"http", "https"} or not _base.hostname:
    raise ImproperlyConfigured(
        f"PORTAL_BASE_URL must be an http(s) origin such as https://atrium.example.com, "
        f"not {PORTAL_BASE_URL!r}."
    )
PORTAL_HOST: str = _base.hostname
BASE_URL_IS_HTTPS = _base.scheme == "https"
if not DEBUG and not BASE_URL_IS_HTTPS and not _is_loopback(PORTAL_HOST):
    raise ImproperlyConfigured(
        f"PORTAL_BASE_URL must use https:// when DEBUG is off (got {PORTAL_BASE_URL!r}); "
        "plain http is accepted only for loopback hosts."
    )

ALLOWED_HOSTS = [PORTAL_HOST, *env.list("EXTRA_ALLOWED_HOSTS", default=[])]
if DEBUG:
    ALLOWED_HOSTS += ["localhost", "127.0.0.1", "[::1]"]
CSRF_TRUSTED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]

# --- Auth0 ----------------------------------------------------------------------------------

DEVTENANT_PORT = env.int("DEVTENANT_PORT", default=8400)


def _issuer() -> str:
    issuer_url = env.str("AUTH0_ISSUER_URL", default="")
    domain = env.str("AUTH0_DOMAIN", default="")
    if issuer_url:
        parsed = urlsplit(issuer_url)
        if parsed.scheme == "http" and not _is_loopback(parsed.hostname or ""):
            raise ImproperlyConfigured(
                f"AUTH0_ISSUER_URL {issuer_url!r} uses http://, which is accepted only for "
                "loopback hosts; use https://."
            )
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ImproperlyConfigured(f"AUTH0_ISSUER_URL {issuer_url!r} is not an http(s) URL.")
        # Used exactly as the provider's `iss`: Auth0's ends with a slash, others may not.
        return issuer_url
    if domain:
        return f"https://{domain.strip().rstrip('/')}/"
    if DEBUG:
        return f"http://127.0.0.1:{DEVTENANT_PORT}/"
    AUTH0_MISSING.append("AUTH0_DOMAIN (or AUTH0_ISSUER_URL)")
    return ""


# What sign-in and the Management API need, missing: named when web or a worker starts
# (portal/startup.py), not here, since migrate, beat and collectstatic do not need them.
AUTH0_MISSING: list[str] = []
AUTH0_ISSUER = _issuer()
USING_DEVTENANT = f"http://127.0.0.1:{DEVTENANT_PORT}/" == AUTH0_ISSUER


def _required_unless_devtenant(name: str, devtenant_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if USING_DEVTENANT:
        return devtenant_default
    AUTH0_MISSING.append(name)
    return ""


# The devtenant's demo applications (devtenant/demo.py) when no tenant is configured.
AUTH0_CLIENT_ID = _required_unless_devtenant("AUTH0_CLIENT_ID", "atrium-portal")
AUTH0_CLIENT_SECRET = _required_unless_devtenant("AUTH0_CLIENT_SECRET", "atrium-portal-dev-secret")
AUTH0_AUDIENCE = env.str("AUTH0_AUDIENCE", default="https://atrium.dev/api")
AUTH0_MGMT_CLIENT_ID = env.str("AUTH0_MGMT_CLIENT_ID", default="") or AUTH0_CLIENT_ID
AUTH0_MGMT_CLIENT_SECRET = env.str("AUTH0_MGMT_CLIENT_SECRET", default="") or AUTH0_CLIENT_SECRET
AUTH0_ROLES_CLAIM = env.str("AUTH0_ROLES_CLAIM", default="https://atrium.dev/roles")
# Namespaced claim of an access token: when its holder last completed a multi-factor sign-in
# (Unix time), set by the post-login Action (Auth0 keeps `amr` and `auth_time` out of access
# tokens). Without it, a bearer token cannot decide a sensitive role's request.
AUTH0_MFA_CLAIM = env.str("AUTH0_MFA_CLAIM", default="https://atrium.dev/mfa_time")
PORTAL_ADMIN_ROLE = env.str("PORTAL_ADMIN_ROLE", default="portal-admin")
# Roles never requested nor granted through Atrium, whatever a descriptor or the registry says
# (PORTAL_ADMIN_ROLE is always one of them).
ACCESS_PROTECTED_ROLES = frozenset(
    {PORTAL_ADMIN_ROLE, *(name.strip() for name in env.list("ACCESS_PROTECTED_ROLES", default=[]))}
    - {""}
)
ROLE_SYNC_INTERVAL = env.int("ROLE_SYNC_INTERVAL", default=300)
# A sync that would remove more than this share of all memberships (and at least the minimum)
# applies nothing until forced: an Auth0 answering wrongly must not empty the mirror.
ROLE_SYNC_BREAKER_SHARE = env.float("ROLE_SYNC_BREAKER_SHARE", default=0.10)
ROLE_SYNC_BREAKER_MINIMUM = env.int("ROLE_SYNC_BREAKER_MINIMUM", default=25)
# The sync's lock ends by itself after this long, should a worker die holding it.
ROLE_SYNC_LOCK_SECONDS = env.int("ROLE_SYNC_LOCK_SECONDS", default=900)
# Access requests: the duration offered and the longest allowed when an entity does not say
# (`atrium.dev/max-access-duration`), ISO 8601; how long a request may wait for a decision;
# how long before a grant ends its holder is reminded; a stuck grant is picked up again after.


def _duration(name: str, default: str) -> timedelta:
    raw = env.str(name, default=default)
    value = parse_duration(raw)
    if value is None or value <= timedelta(0):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a positive ISO 8601 duration (P7D)")
    return value


ACCESS_DEFAULT_DURATION = _duration("ACCESS_DEFAULT_DURATION", "P7D")
ACCESS_MAX_DURATION = _duration("ACCESS_MAX_DURATION", "P90D")
if ACCESS_MAX_DURATION > LONGEST_GRANT:
    raise ImproperlyConfigured(
        f"ACCESS_MAX_DURATION={env.str('ACCESS_MAX_DURATION')!r} is longer than a year (P365D), "
        "the longest grant Atrium makes"
    )
ACCESS_REQUEST_LAPSE = _duration("ACCESS_REQUEST_LAPSE", "P7D")
ACCESS_REMINDER_BEFORE = _duration("ACCESS_REMINDER_BEFORE", "P3D")
ACCESS_RECONCILE_AFTER = timedelta(seconds=env.int("ACCESS_RECONCILE_AFTER", default=120))
# Deciding a request for a sensitive role needs a multi-factor sign-in at most this old
# (sent to the issuer as `max_age`).
ACCESS_STEP_UP_MAX_AGE = _duration("ACCESS_STEP_UP_MAX_AGE", "PT10M")
# Access reviews (access/reviews.py): a scheduled review opens this long before it is due (a
# review of one use is due this long after it opens); a holder who has not signed in for this
# long is flagged in a review's snapshot.
ACCESS_REVIEW_OPEN_BEFORE = _duration("ACCESS_REVIEW_OPEN_BEFORE", "P14D")
ACCESS_REVIEW_STALE_SIGN_IN = _duration("ACCESS_REVIEW_STALE_SIGN_IN", "P90D")
# An optional Slack incoming webhook told of the same events as the mail.
SLACK_WEBHOOK_URL = env.str("SLACK_WEBHOOK_URL", default="")
# Clock skew allowed when checking `exp`, `iat` and `nbf` of tokens, in seconds.
AUTH0_LEEWAY = env.int("AUTH0_LEEWAY", default=60)
AUTH0_HTTP_TIMEOUT = env.float("AUTH0_HTTP_TIMEOUT", default=10.0)

AUTH_USER_MODEL = "portal.User"
# The approvals dashboard's bulk action posts one field per request selected: a thousand
# pending requests decided at once must not be refused as too many fields.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5_000
# Django's default, said here because the README promises it: a larger body is a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Who may do what is the access policy's to say, for `has_perm` too; nobody has a password.
AUTHENTICATION_BACKENDS = ["access.backends.PolicyBackend"]
LOGIN_URL = "/auth/login/"
LOGIN_REDIRECT_URL = "/"

# --- Applications ---------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Full-text search and its indexes on PostgreSQL; inert on SQLite.
    "django.contrib.postgres",
    "csp",
    "django_htmx",
    "template_partials",
    "django_tables2",
    "django_filters",
    "django_ratelimit",
    "django_prometheus",
    "portal",
    "catalog",
    "access",
]

MIDDLEWARE = [
    # Every request gets an id for its log lines, and is counted for /metrics (with its pair,
    # the last middleware).
    "portal.logs.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before the rest, so that probes and /metrics are answered whatever the Host or scheme.
    "portal.middleware.HealthCheckMiddleware",
    # The gateways' decisions (`/authz/`), likewise answered whatever the Host, before sessions.
    "access.authz.GatewayDecisionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Above WhiteNoise, so that static files carry the policy and Permissions-Policy too.
    "portal.middleware.PortalCSPMiddleware",
    "portal.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # NUL characters and overlong query strings are refused before any view (portal/bounds.py).
    "portal.bounds.BoundsMiddleware",
    # Every page needs a signed-in person unless its view says @login_not_required (Django's
    # middleware; htmx and forms without a session are told why and brought back).
    "portal.middleware.PortalLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Times on pages in the viewer's own zone, as their browser names it.
    "portal.middleware.TimezoneMiddleware",
    # Sessions end when idle or too old, and a person Auth0 blocked is signed out (after the
    # messages, to say why).
    "portal.middleware.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Below WhiteNoise: static files keep their long cache; signed-in pages and the API don't.
    "portal.middleware.NoStoreMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "portal.context_processors.portal",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------------


def _database() -> dict[str, Any]:
    if env.str("DATABASE_URL", default=""):
        return env.db_url("DATABASE_URL")
    if env.str("POSTGRES_HOST", default=""):
        # The parts, as Compose passes them: a password needs no URL-encoding this way (read
        # from os.environ, since django-environ would take a leading `$` for another variable).
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": env.str("POSTGRES_HOST"),
            "PORT": env.int("POSTGRES_PORT", default=5432),
            "NAME": env.str("POSTGRES_DB", default="atrium"),
            "USER": env.str("POSTGRES_USER", default="atrium"),
            "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
        }
    return env.db_url_config(f"sqlite:///{VAR_DIR / 'atrium.sqlite3'}")


DATABASES = {"default": _database()}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker started by the integration tests shares it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-atrium.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, reusing its Redis client (portal/caches.py).
            "BACKEND": "portal.caches.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "atrium",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery (read by portal/celery.py through the CELERY_ namespace) ------------------------

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: producer and worker share one folder, no server needed.
    (BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    (BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        # Its exchange tables too, which kombu otherwise writes to ./control in the cwd.
        "control_folder": str(BROKER_DIR / "control"),
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
    # The filesystem transport has no fan-out exchange for remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Redis redelivers an unacknowledged message after this long; it must outlast the
        # hard time limit, or a long task would run twice.
        "visibility_timeout": 3600,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Outcomes are written to the database by the services; nobody waits on a result.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_TASK_ALWAYS_EAGER = False
# The queue tasks go to and workers take from; portals sharing one Redis each need their own.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TIMEZONE = "UTC"
# Beat's own state; a read-only container points it at a writable volume.
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule")
)
# Sends each scheduled run once however many beats run: a lock per run in Redis (portal/beat.py).
CELERY_BEAT_SCHEDULER = "portal.beat:LockedScheduler"
CATALOG_REFRESH_INTERVAL = env.int("CATALOG_REFRESH_INTERVAL", default=600)
# `host` or `host:port` entries URL locations may read although they resolve to loopback or
# private addresses (an internal Git host); every other such read is refused (catalog/fetch.py).
CATALOG_ALLOWED_HOSTS = env.list("CATALOG_ALLOWED_HOSTS", default=[])
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "worker-heartbeat": {
        "task": "portal.tasks.worker_heartbeat_record_task",
        "schedule": timedelta(seconds=60),
        "options": {"expires": 55},
    },
    "roles-sync": {
        "task": "access.tasks.roles_sync_task",
        "schedule": timedelta(seconds=ROLE_SYNC_INTERVAL),
        "options": {"expires": ROLE_SYNC_INTERVAL},
    },
    "catalog-refresh": {
        "task": "catalog.tasks.catalog_locations_refresh_task",
        "schedule": timedelta(seconds=CATALOG_REFRESH_INTERVAL),
        "options": {"expires": CATALOG_REFRESH_INTERVAL},
    },
    # Grants: ended on time, their holders reminded, stuck ones picked up again; requests
    # nobody decided lapse.
    "grants-expire": {
        "task": "access.tasks.expire_grants_task",
        "schedule": timedelta(seconds=60),
        "options": {"expires": 55},
    },
    "grants-remind": {
        "task": "access.tasks.remind_grants_task",
        "schedule": timedelta(minutes=15),
        "options": {"expires": 600},
    },
    "grants-reconcile": {
        "task": "access.tasks.reconcile_grants_task",
        "schedule": ACCESS_RECONCILE_AFTER,
        "options": {"expires": ACCESS_RECONCILE_AFTER.total_seconds()},
    },
    "requests-lapse": {
        "task": "access.tasks.lapse_requests_task",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3000},
    },
    # Access reviews: those falling due opened (and what the removal policy says removed);
    # reviewers reminded, once a reminder slot.
    "reviews-open": {
        "task": "access.tasks.open_reviews_task",
        "schedule": timedelta(minutes=15),
        "options": {"expires": 600},
    },
    "reviews-remind": {
        "task": "access.tasks.remind_reviews_task",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3000},
    },
}

# --- Mail -----------------------------------------------------------------------------------

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"Atrium <atrium@{PORTAL_HOST}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security -------------------------------------------------------------------------------

# Django's database sessions, read by one SQL statement of their own (portal/sessions.py).
SESSION_ENGINE = "portal.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Cookies travel only over TLS whenever the portal is served over TLS.
SESSION_COOKIE_SECURE = BASE_URL_IS_HTTPS
CSRF_COOKIE_SECURE = BASE_URL_IS_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline or foreign script, style or plugin; no framing; forms post to the portal only, and
# to the issuer, where sign-out (and a sign-in after a session ended) redirects a form's answer.
# The issuer's origin is added per response by portal.middleware.PortalCSPMiddleware.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# Features no page of the portal uses, denied to it and to anything it might embed.
PERMISSIONS_POLICY = [
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "hid",
    "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get",
    "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
]  # fmt: skip
# A session ends after this long without a request, and this long after sign-in whatever
# happens (NIST SP 800-63B's limits for AAL2: 30 minutes idle, 12 hours in all).
SESSION_IDLE_TIMEOUT = _duration("SESSION_IDLE_TIMEOUT", "PT30M")
SESSION_LIFETIME = _duration("SESSION_LIFETIME", "PT12H")
# The cookie need not outlive the session it carries.
SESSION_COOKIE_AGE = int(SESSION_LIFETIME.total_seconds())

# Behind a TLS-terminating proxy (the usual deployment), trust its X-Forwarded-Proto, send
# every plain-http request to https and pin browsers to https with HSTS.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = not DEBUG
    SECURE_HSTS_SECONDS = env.int("HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=False)

# --- Rate limits ----------------------------------------------------------------------------

# django-ratelimit rates: "20/m" is 20 a minute, "100/5m" 100 in five minutes (s, m, h, d);
# an empty value switches that limit off. Counted in Redis when REDIS_URL is set, so that every
# process counts together; otherwise each process counts for itself.
_RATE = re.compile(r"(?P<count>\d+)/(?P<multiple>\d*)(?P<unit>[smhd])")


def _rate(name: str, default: str) -> str:
    raw = env.str(name, default=default).strip()
    found = _RATE.fullmatch(raw)
    if raw and not (found and int(found["count"]) > 0 and int(found["multiple"] or 1) > 0):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate such as 20/m (a count of at least 1, a slash, then "
            "s, m, h or d, optionally after a number: 100/5m); leave it empty for no limit"
        )
    return raw


RATE_LIMIT_SIGN_IN = _rate("RATE_LIMIT_SIGN_IN", "20/m")  # sign-in starts, callbacks: per address
RATE_LIMIT_BAD_TOKENS = _rate("RATE_LIMIT_BAD_TOKENS", "20/m")  # refused bearer tokens: per address
RATE_LIMIT_ROLE_REFRESH = _rate("RATE_LIMIT_ROLE_REFRESH", "5/m")  # "Refresh my roles": per person
RATE_LIMIT_API = _rate("RATE_LIMIT_API", "600/m")  # API calls: per caller, per address if anonymous
# How many proxies in front of the portal append the address they saw to X-Forwarded-For: the
# client's address is that many entries from its right end. 0 ignores the header (a client can
# write anything in it) and counts by the connection's address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if BEHIND_TLS_PROXY else 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT={TRUSTED_PROXY_COUNT} must be 0 or more")
# Their own cache alias, so that clearing the cache does not reset the counters.
CACHES["ratelimit"] = (
    {**CACHES["default"], "KEY_PREFIX": "atrium-ratelimit"}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit"}
)
RATELIMIT_USE_CACHE = "ratelimit"
# A counter the cache lost (it expired between add and incr) lets the request through.
RATELIMIT_FAIL_OPEN = True
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit knows only django-redis by name; Django's own RedisCache increments with
    # Redis' atomic INCR too.
    "django_ratelimit.W001",
    # Without Redis the local-memory cache counts per process: exact for one process (dev), looser
    # with several; the README says to set REDIS_URL in production.
    *([] if REDIS_URL else ["django_ratelimit.E003"]),
]

# --- Static files ---------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Dev serves straight from the source folders; production from what collectstatic gathered.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
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

# --- Locale ---------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging and metrics ------------------------------------------------------------------

# `json`: one JSON object a line (time, level, logger, message, request_id, correlation_id),
# for a log collector; `text` for people.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be text or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "portal.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "portal.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
# Celery's worker keeps the root logger as configured here, so its lines are JSON too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "text"
# --- Gateways (`/authz/`, the OPA bundle) -------------------------------------------------------

# A request no declared route takes: `deny` (403) or `allow` (200, nothing checked).
AUTHZ_UNKNOWN_ROUTES = env.str("AUTHZ_UNKNOWN_ROUTES", default="deny")
if AUTHZ_UNKNOWN_ROUTES not in {"allow", "deny"}:
    raise ImproperlyConfigured(
        f"AUTHZ_UNKNOWN_ROUTES={AUTHZ_UNKNOWN_ROUTES!r} must be allow or deny"
    )
# The `aud` tokens must name at a route whose entity names no `atrium.dev/audience`.
AUTHZ_DEFAULT_AUDIENCE = env.str("AUTHZ_DEFAULT_AUDIENCE", default="") or AUTH0_AUDIENCE
# A denial is written to the audit log once per subject and route in this many seconds.
AUTHZ_DENIAL_AUDIT_SECONDS = env.int("AUTHZ_DENIAL_AUDIT_SECONDS", default=60)
# /authz/explain per person: each checks a token against the issuer's keys.
RATE_LIMIT_AUTHZ_EXPLAIN = _rate("RATE_LIMIT_AUTHZ_EXPLAIN", "30/m")

# /metrics answers only a scrape with `Authorization: Bearer <METRICS_TOKEN>`; 404 while unset.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
