"""Settings for Autopack Dashboard, each read from the environment with a safe local default.

The README lists every variable. A `.env` file at the project root is read when present.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The default key is only good for a local, loopback-only install; production sets its own.
SECRET_KEY = env("SECRET_KEY", default="autopack-dashboard-local-only-insecure-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

AUTOPACK_API_KEY = env("AUTOPACK_API_KEY", default="")
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
    # The site composes the apps: the dashboard page and the demo (its `demo` command) live here.
    "autopack_site",
    "runs",
    "usage",
    "routing",
    "notes",
    "alerts",
]

# Background work (webhook delivery, the sweep) runs as tasks of Django's tasks framework; `manage.py
# db_worker` runs them from the database. Another of the framework's backends (RQ, say) is a setting away.
TASKS = {"default": {"BACKEND": env("AUTOPACK_TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}

MIDDLEWARE = [
    # First, so it compresses what every other middleware produced. Django 4.2+ pads the gzip header
    # with random bytes, against BREACH; the dashboard's ~45 KB of HTML travels as under 10 KB.
    # Server-sent events (the gateway's streamed answers) pass uncompressed, as they arrive.
    "autopack_site.middleware.GZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "autopack_site.middleware.XFrameOptionsExemptMiddleware",
    "autopack_site.middleware.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
