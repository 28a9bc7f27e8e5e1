"""Settings for Autopack Dashboard, each read from the environment with a safe local default.

The README lists every variable. A `.env` file at the project root is read when present.
"""

import datetime as dt
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# "production" turns on every default a deployment needs (below); each stays overridable by its own variable.
AUTOPACK_ENV = env("AUTOPACK_ENV", default="local")
if AUTOPACK_ENV not in ("local", "production"):
    raise ImproperlyConfigured(f"AUTOPACK_ENV must be 'local' or 'production', not {AUTOPACK_ENV!r}")
PRODUCTION = AUTOPACK_ENV == "production"

DEBUG = env.bool("DEBUG", default=False)
# The default key is only good for a local, loopback-only install; production must set its own.
LOCAL_SECRET_KEY = "autopack-dashboard-local-only-insecure-key"  # noqa: S105
SECRET_KEY = env("SECRET_KEY", default="" if PRODUCTION else LOCAL_SECRET_KEY)
# Django's own bar for a real key (check --deploy's security.W009): long and varied.
if PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    raise ImproperlyConfigured(
        "AUTOPACK_ENV=production needs a real SECRET_KEY (50+ random characters), e.g. from "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# The bootstrap API key (named keys come from `manage.py create_api_key NAME`).
AUTOPACK_API_KEY = env("AUTOPACK_API_KEY", default="")
# Every dashboard page, fragment and form then needs a logged-in staff user; the JSON API needs a key.
AUTOPACK_REQUIRE_LOGIN = env.bool("AUTOPACK_REQUIRE_LOGIN", default=PRODUCTION)
AUTOPACK_MODELS_CONFIG = env("AUTOPACK_MODELS_CONFIG", default=str(BASE_DIR / "config" / "models.yaml"))
AUTOPACK_NOTES_FILE = env("AUTOPACK_NOTES_FILE", default=str(BASE_DIR / ".autopack" / "human_notes.md"))
AUTOPACK_DEMO = env.bool("AUTOPACK_DEMO", default=True)
AUTOPACK_POLL_SECONDS = env.int("AUTOPACK_POLL_SECONDS", default=5)
# Origins allowed to frame the dashboard: the editors' webviews and loopback pages.
AUTOPACK_FRAME_ANCESTORS = env.list(
    "AUTOPACK_FRAME_ANCESTORS",
    default=[
        "'self'",
        "vscode-webview:",
        "vscode-file:",
        "http://localhost:*",
        "http://127.0.0.1:*",
    ],
)
# Other origins whose pages may make dashboard changes (a reverse proxy's public name, say).
AUTOPACK_TRUSTED_ORIGINS = env.list("AUTOPACK_TRUSTED_ORIGINS", default=[])
# A phase under way with no status update and no LLM call for longer than this looks stuck.
AUTOPACK_STUCK_MINUTES = env.int("AUTOPACK_STUCK_MINUTES", default=15)
# Where alerts are posted (a Slack-compatible incoming webhook), if anywhere.
AUTOPACK_ALERT_WEBHOOK_URL = env("AUTOPACK_ALERT_WEBHOOK_URL", default="")
# Seconds a webhook has to answer; the first retry's delay (doubled each time); attempts in all.
AUTOPACK_ALERT_WEBHOOK_TIMEOUT = env.float("AUTOPACK_ALERT_WEBHOOK_TIMEOUT", default=5.0)
AUTOPACK_ALERT_RETRY_SECONDS = env.float("AUTOPACK_ALERT_RETRY_SECONDS", default=30.0)
AUTOPACK_ALERT_ATTEMPTS = env.int("AUTOPACK_ALERT_ATTEMPTS", default=6)
# Seconds between the sweeps that look for stuck phases, time limits and quota crossings.
AUTOPACK_SWEEP_SECONDS = env.float("AUTOPACK_SWEEP_SECONDS", default=60.0)
# Where gunicorn's workers and the task worker beside them keep their metrics, so that `/metrics` adds
# them up (start.sh and `make run` set it). prometheus-client reads the same variable when it starts.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
# Largest JSON body the run API accepts, in bytes.
AUTOPACK_MAX_BODY_BYTES = 1024 * 1024

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "django_tasks",
    "django_tasks_db",
    "axes",
    # The site composes the apps: the dashboard page and the demo (its `demo` command) live here.
    "autopack_site",
    "runs",
    "usage",
    "routing",
    "notes",
    "alerts",
    "apikeys",
]

# Background work (webhook delivery, the sweep) runs as tasks of Django's tasks framework; `manage.py
# db_worker` runs them from the database. Another of the framework's backends (RQ, say) is a setting away.
TASKS = {"default": {"BACKEND": env("AUTOPACK_TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}

MIDDLEWARE = [
    # Outermost: it times every other middleware too, and logs and counts the response as it is sent.
    "autopack_site.middleware.RequestLogMiddleware",
    # Next, so it compresses what every other middleware produced. Django 4.2+ pads the gzip header with
    # random bytes, against BREACH; the dashboard's ~45 KB of HTML travels as under 10 KB.
    # Server-sent events (the gateway's streamed answers) pass uncompressed, as they arrive.
    "autopack_site.middleware.GZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Above the session and CSRF middleware: it marks their cookies once they are set.
    "autopack_site.middleware.PartitionedCookiesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "autopack_site.middleware.XFrameOptionsExemptMiddleware",
    "autopack_site.middleware.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "autopack_site.middleware.LoginRequiredMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: it refuses a locked-out address or user name before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Each cache is the memory of one process: what is kept there is either keyed by a version that any
# change moves (rendered panels, run progress) or kept for seconds (sessions), so several workers and
# servers on one database never disagree for longer.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "sessions": {"BACKEND": "autopack_site.caches.BriefLocMemCache", "LOCATION": "sessions", "TIMEOUT": 5},
}
# Sessions are read from the cache first, so a page's polls rarely read them from the database; a logout
# made on another worker or server is seen here within the sessions cache's TIMEOUT.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "sessions"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Login attempts (dashboard and admin): after AXES_FAILURE_LIMIT failures from one address, or for one
# user name, that address or name is locked out for AXES_COOLOFF_MINUTES after its last failure.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "autopack_site.views.locked_out"
# Its start-up banner would land in every command's output (record_usage, db_worker, the CSV export).
AXES_VERBOSE = False

ROOT_URLCONF = "autopack_site.urls"
WSGI_APPLICATION = "autopack_site.wsgi.application"

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
                "autopack_site.context_processors.dashboard",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers write to one file: take the write lock at BEGIN and wait for it.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    # Tests use a file, not Django's shared in-memory database: the browser tests' live server answers
    # polls on several threads, which must each have a connection of their own, as in production.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's, with a health check that needs no round trip on a quiet connection.
        DATABASES["default"]["ENGINE"] = "autopack_site.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Fail in seconds rather than hang past gunicorn's worker timeout when the server is away.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
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
# Tests and `runserver` serve static files straight from the finders.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)

# The API reads bodies itself and answers 413 as JSON; this only stops a runaway upload.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": AUTOPACK_FRAME_ANCESTORS,
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Production's defaults, each overridable by the variable of Django's own name (the README lists them).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Load balancers ask for the health check over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^health$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
# "HTTP_X_FORWARDED_PROTO,https" behind a TLS-terminating proxy that sets that header (and strips a client's).
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None
if SECURE_PROXY_SSL_HEADER is not None and len(SECURE_PROXY_SSL_HEADER) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER is a header and a value: HTTP_X_FORWARDED_PROTO,https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # The SDK's HTTP client logs every request to a provider at INFO: one line per LLM call, which the
    # usage records already hold.
    "loggers": {
        **{name: {"level": "WARNING"} for name in ("httpx", "httpx2", "openai")},
        # A request that met the database away: one line, not a traceback per request during a restart.
        "django.request": {"filters": ["database_away"]},
    },
    "filters": {"database_away": {"()": "autopack_site.logs.DatabaseAwayFilter"}},
}
