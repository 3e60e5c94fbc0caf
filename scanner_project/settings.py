"""Settings, read from the environment (12-factor).

With no environment at all this is the embedded default: SQLite, no Redis, one
scheduler instance. DATABASE_URL and REDIS_URL (or REDIS_HOST...) make it the
production setup. Every variable of the original design keeps its meaning.
"""

from pathlib import Path

from scanner_project.env import (
    env_bool,
    env_choice,
    env_database,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_str,
    env_timezone,
    local_secret_key,
    private_sqlite_file,
    redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# Production sets SECRET_KEY. The embedded default must not ship a fixed,
# guessable key, and a random one per process would log users out on every
# restart, so it keeps a generated key in a private file beside the project.
SECRET_KEY = env_str("SECRET_KEY") or local_secret_key(BASE_DIR / ".secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "scanner_project.admin_site.SchedulerAdminConfig",  # django.contrib.admin, every search bounded
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "history",
    "schedules",
    "audit",
    "alerts",
    "pauses",
    "reruns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "scanner_project.urls"
WSGI_APPLICATION = "scanner_project.wsgi.application"

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

# --- Database -------------------------------------------------------------
DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DB_POOL_MIN_SIZE = env_int("DB_POOL_MIN_SIZE", 1, minimum=0)
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 10, minimum=1)
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 5, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's own psycopg pool (the original design: 1 to 10 connections per
    # process). A pool needs CONN_MAX_AGE=0; connections go back on close.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # After a PostgreSQL restart the pool must not hand out dead connections:
    # each one is checked as it is taken (one short round trip).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DB_HEALTH_CHECKS", True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "pool": {
                "min_size": DB_POOL_MIN_SIZE,
                "max_size": DB_POOL_MAX_SIZE,
                "timeout": env_float("DB_POOL_TIMEOUT", 5.0, minimum=0.1),
            },
            "connect_timeout": DB_CONNECT_TIMEOUT,
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    private_sqlite_file(DATABASES["default"])
    # The covering index's INCLUDE columns only speed up PostgreSQL; on SQLite
    # it is a plain index, as intended, and the warning is noise at every start.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    # Scheduler threads and the web process write concurrently; wait rather than
    # fail with "database is locked". IMMEDIATE: a transaction takes the write
    # lock when it begins, so the wait applies; a deferred one that reads, then
    # writes while another connection writes fails at once instead (seen at a
    # scheduler's first heartbeat, update_or_create, beside the queue taker).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis ----------------------------------------------------------------
REDIS_URL = redis_url()
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 50, minimum=1)
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 2.0, minimum=0.05)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "CONNECTION_POOL_KWARGS": {
                    "max_connections": REDIS_MAX_CONNECTIONS,
                    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                    "socket_timeout": REDIS_SOCKET_TIMEOUT,
                    "health_check_interval": 30,
                },
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Scheduler (names and defaults of the original design) ----------------
MAX_WORKERS = env_int("MAX_WORKERS", 5, minimum=1, maximum=500)
JOB_REPLACE_EXISTING_INSTANCE = env_bool("JOB_REPLACE_EXISTING_INSTANCE", True)
JOB_MAX_INSTANCES = env_int("JOB_MAX_INSTANCES", 1, minimum=1)
JOB_COALESCE = env_bool("JOB_COALESCE", True)
JOB_MISFIRE_GRACE_TIME = env_int("JOB_MISFIRE_GRACE_TIME", 300, minimum=1)
# Schedules without their own spread_minutes run this many seconds at most
# after their slot, at a stable offset per schedule (schedules/timing/spread.py).
DEFAULT_SPREAD_SECONDS = env_int("DEFAULT_SPREAD_SECONDS", 0, minimum=0, maximum=24 * 3600)
# An interval schedule shorter than this is refused when saved or imported:
# each slot is a history row. Tests and demos that need faster slots lower it.
MIN_INTERVAL_SECONDS = env_int("MIN_INTERVAL_SECONDS", 60, minimum=1, maximum=86400)
# /healthz says degraded when the oldest queued slot waited longer than this.
QUEUE_WARN_SECONDS = env_float("QUEUE_WARN_SECONDS", 300.0, minimum=1)
LOCK_TIMEOUT = env_float("LOCK_TIMEOUT", 60.0, minimum=0.3)
# A run whose instance died (heartbeat stale) goes back to the queue until it
# has been taken this many times; then it is recorded abandoned.
MAX_DELIVERIES = env_int("MAX_DELIVERIES", 3, minimum=1, maximum=100)
SCHEDULE_CHECK_INTERVAL = env_float("SCHEDULE_CHECK_INTERVAL", 60.0, minimum=0.1)
CHANGE_POLL_INTERVAL = env_float("CHANGE_POLL_INTERVAL", 0.5, minimum=0.05)
SHUTDOWN_GRACE_SECONDS = env_float("SHUTDOWN_GRACE_SECONDS", 30.0, minimum=0)
SCHEDULER_INSTANCE_ID = env_str("SCHEDULER_INSTANCE_ID")  # default: host-pid, set at start
INSTANCE_STALE_SECONDS = env_float("INSTANCE_STALE_SECONDS", 15.0, minimum=1)

# --- Scans ----------------------------------------------------------------
SCAN_API_URL = env_str("SCAN_API_URL")
SCAN_API_TOKEN = env_str("SCAN_API_TOKEN")
SCAN_RUNNER = env_str("SCAN_RUNNER")
SCAN_RETRY_BACKOFF = env_float("SCAN_RETRY_BACKOFF", 2.0, minimum=0)
SCAN_DEADLINE = env_float("SCAN_DEADLINE", 120.0, minimum=1)
# The browser scanner's Chromium (schedules.scans.browser): Debian's package.
SCAN_BROWSER_PATH = env_str("SCAN_BROWSER_PATH") or "/usr/bin/chromium"
PROBE_ALLOW_PRIVATE = env_bool("PROBE_ALLOW_PRIVATE", False)
# Networks the probe may reach although they are not public (an intranet
# range that is scanned on purpose), e.g. 10.20.0.0/16,fd12::/64.
PROBE_ALLOWED_NETWORKS = env_networks("PROBE_ALLOWED_NETWORKS")
PROBE_SCHEME = env_choice("PROBE_SCHEME", "https", ("https", "http"))
HTTP_MAX_RESPONSE_BYTES = env_int("HTTP_MAX_RESPONSE_BYTES", 10 * 1024 * 1024, minimum=1024)

# --- Upstream schedule API ------------------------------------------------
API_URL = env_str("API_URL")
API_TOKEN = env_str("API_TOKEN")
REQUEST_TIMEOUT = env_float("REQUEST_TIMEOUT", 10.0, minimum=0.1)
ENABLE_API_SYNC = env_bool("ENABLE_API_SYNC", False)
API_SYNC_INTERVAL = env_float("API_SYNC_INTERVAL", 300.0, minimum=1)
# Whole-answer bound: a server that drips bytes never trips the read timeout.
API_SYNC_DEADLINE = env_float("API_SYNC_DEADLINE", 60.0, minimum=0.1)
API_SYNC_RETRIES = env_int("API_SYNC_RETRIES", 3, minimum=0, maximum=10)
API_SYNC_BACKOFF = env_float("API_SYNC_BACKOFF", 0.5, minimum=0)

# --- History, metrics, health ---------------------------------------------
# /healthz answers only its status to anonymous callers; a monitor that sends
# "Authorization: Bearer <HEALTHZ_TOKEN>" (or a staff session) gets the details.
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN")
HISTORY_RETENTION_DAYS = env_int("HISTORY_RETENTION_DAYS", 0, minimum=0)
# The audit trail is kept apart from the history: 0 keeps every entry.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 0, minimum=0)
METRICS_PORT = env_int("METRICS_PORT", 0, minimum=0, maximum=65535)
METRICS_ADDR = env_str("METRICS_ADDR", "0.0.0.0")

# --- Alerts (see README "Alerts") -----------------------------------------
ALERT_EMAILS = env_list("ALERT_EMAILS", [])
ALERT_WEBHOOK_URLS = env_list("ALERT_WEBHOOK_URLS", [])
ALERT_AFTER_FAILURES = env_int("ALERT_AFTER_FAILURES", 3, minimum=1, maximum=100)
ALERT_SYNC_AFTER_FAILURES = env_int("ALERT_SYNC_AFTER_FAILURES", 3, minimum=1)
ALERT_NO_INSTANCE_SECONDS = env_float("ALERT_NO_INSTANCE_SECONDS", 120.0, minimum=1)
ALERT_QUEUE_AGE_SECONDS = env_float("ALERT_QUEUE_AGE_SECONDS", 600.0, minimum=1)
ALERT_CHECK_INTERVAL = env_float("ALERT_CHECK_INTERVAL", 10.0, minimum=0.1)
ALERT_RATE_LIMIT = env_int("ALERT_RATE_LIMIT", 10, minimum=2)  # messages per channel per window
ALERT_RATE_WINDOW_SECONDS = env_float("ALERT_RATE_WINDOW_SECONDS", 60.0, minimum=1)
ALERT_RETRY_BACKOFF = env_float("ALERT_RETRY_BACKOFF", 30.0, minimum=0.01)
ALERT_DELIVERY_GIVE_UP_SECONDS = env_float("ALERT_DELIVERY_GIVE_UP_SECONDS", 86400.0, minimum=1)
ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 5.0, minimum=0.1)
# Webhooks reach only public addresses, as the probe does; these networks
# too (an internal relay on purpose), for targets from the environment and
# admin alike, e.g. 10.20.0.0/16,fd12::/64.
ALERT_ALLOWED_NETWORKS = env_networks("ALERT_ALLOWED_NETWORKS")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=0.1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "scan-scheduler@localhost")

# --- Locale ---------------------------------------------------------------
FORMAT_MODULE_PATH = ["scanner_project.formats"]
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_timezone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))

# --- Security (production values via the environment; see README) ---------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# DEBUG error pages hide REDIS_URL, the cache LOCATION, tokens and URL user info.
DEFAULT_EXCEPTION_REPORTER_FILTER = "scanner_project.error_reports.SecretSettingsFilter"

# --- Logging --------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # The original design's format.
        "text": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(message)s"},
        "json": {"()": "scanner_project.logformat.JsonFormatter"},
    },
    # Every line, any library's too (urllib3 prints the URLs it retries), goes
    # through the one redaction path: no user info, secret query value,
    # webhook path or bearer token reaches the log.
    "filters": {"redact": {"()": "scanner_project.redaction.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # APScheduler logs every run at INFO and every skipped or missed slot
        # at WARNING; the runtime logs (and records) each of those itself.
        "apscheduler": {"level": "ERROR"},
        # The pool warns on every failed connection attempt; the scheduler
        # logs one line per database outage itself.
        "psycopg.pool": {"level": "ERROR"},
    },
}
