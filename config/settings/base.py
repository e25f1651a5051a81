"""Settings shared by every environment, read from the environment through django-environ; those whose value is
right for every install are fixed here, each with a comment saying why (the README documents the others).

With nothing configured Tollgate runs embedded: SQLite under var/, a local-memory cache and eager Celery.
Setting DATABASE_URL, REDIS_URL and CELERY_BROKER_URL switches each part to the real service.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
# Production reads it from the environment (config/settings/production.py); elsewhere cookies are never `Secure`.
INSECURE_HTTP = False
# The demo's pages (/demo/return, where `make demo`'s checkout lands): they show the demo project without a key,
# so they follow DEBUG, which only development turns on (production refuses to start with it).
DEMO_PAGES = DEBUG
# Where `manage.py demo_setup` keeps the demo's keys; the demo's pricing page backend reads its project key there.
DEMO_CREDENTIALS = env("DEMO_CREDENTIALS", default=str(VAR_DIR / "demo-credentials.json"))
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Tollgate's apps, bottom to top (docs/architecture.md, "Floor plan"): each imports, and points foreign keys, only
# at apps before it in this list (tests/test_floor_plan.py holds it).
TOLLGATE_APPS = [
    "core",
    "projects",
    "stripe_gateway",
    "customers",
    "catalog",
    "events",
    "costs",
    "entitlements",
    "billing",
    "webhooks",
    "agents",
    "backoffice",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    *TOLLGATE_APPS,
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestContextMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "core.middleware.NulCharactersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin CSS, the API docs' assets) from STATIC_ROOT, compressed and cached, by every web process.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.BackOfficeTransportMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "core.context_processors.transport",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tollgate.sqlite3'}")}
# Write services open their own transactions, and Stripe is never called inside one.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# How long either end of a PostgreSQL session waits on a silent peer before it ends the session (see below).
DATABASE_KEEPALIVE_IDLE_SECONDS = env.int("DATABASE_KEEPALIVE_IDLE_SECONDS", default=30)
DATABASE_KEEPALIVE_INTERVAL_SECONDS = env.int("DATABASE_KEEPALIVE_INTERVAL_SECONDS", default=10)
DATABASE_KEEPALIVE_COUNT = env.int("DATABASE_KEEPALIVE_COUNT", default=3)
DATABASE_DEAD_PEER_SECONDS = (
    DATABASE_KEEPALIVE_IDLE_SECONDS + DATABASE_KEEPALIVE_INTERVAL_SECONDS * DATABASE_KEEPALIVE_COUNT
)
DATABASE_SERVER_KEEPALIVES = env.bool("DATABASE_SERVER_KEEPALIVES", default=True)
# Statements' parameters bound by the server, not quoted into the SQL by psycopg, and the statements a session runs
# again and again (PREPARE_THRESHOLD times) prepared once per session: the database parses and plans a worker's
# hot statements once instead of on every event (docs/operations.md, "Prepared statements"). Needs a session per
# connection, which Tollgate needs anyway (its advisory locks): direct, or a pooler in session mode.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
# 5 runs: psycopg's own default, fixed (a statement run less often than that is not worth a PREPARE).
DATABASE_PREPARE_THRESHOLD = 5
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with a health check that needs no round trip while the connection is quiet.
    DATABASES["default"]["ENGINE"] = "core.backends.postgresql"
    # TCP keepalives on both ends of every session, so a silent peer is found dead after
    # DATABASE_DEAD_PEER_SECONDS (30 s idle, then 3 probes 10 s apart) instead of TCP's two hours:
    # - ours (libpq's keepalives_*, and tcp_user_timeout for what we sent and nobody acknowledged): a connection
    #   whose server vanished (a failover, a dropped network) fails, and the worker waiting on it retries;
    # - the server's (its tcp_keepalives_* and tcp_user_timeout, asked for in the session's startup options, which
    #   PostgreSQL applies to that session's socket): a worker host that vanished without closing its sessions
    #   (power lost, network cut) has them ended, and with them its advisory locks — a customer's Stripe events,
    #   beat's lead — whatever the server's own configuration says (its default is the kernel's two hours).
    #   A pooler that refuses startup options (PgBouncer without `ignore_startup_parameters = options`) needs
    #   DATABASE_SERVER_KEEPALIVES=false, and the same values set on the server.
    # The URL's own parameters (?keepalives_idle=…, ?options=…) win.
    _keepalive_ms = DATABASE_DEAD_PEER_SECONDS * 1000
    DATABASES["default"]["OPTIONS"] = {
        "keepalives": 1,
        "keepalives_idle": DATABASE_KEEPALIVE_IDLE_SECONDS,
        "keepalives_interval": DATABASE_KEEPALIVE_INTERVAL_SECONDS,
        "keepalives_count": DATABASE_KEEPALIVE_COUNT,
        "tcp_user_timeout": _keepalive_ms,
        **(
            {
                "options": f"-c tcp_keepalives_idle={DATABASE_KEEPALIVE_IDLE_SECONDS} "
                f"-c tcp_keepalives_interval={DATABASE_KEEPALIVE_INTERVAL_SECONDS} "
                f"-c tcp_keepalives_count={DATABASE_KEEPALIVE_COUNT} -c tcp_user_timeout={_keepalive_ms}"
            }
            if DATABASE_SERVER_KEEPALIVES
            else {}
        ),
        **(
            {"server_side_binding": True, "prepare_threshold": DATABASE_PREPARE_THRESHOLD}
            if DATABASE_PREPARED_STATEMENTS
            else {}
        ),
        **DATABASES["default"].get("OPTIONS", {}),
    }
# SQLite (the embedded default, or any DATABASE_URL=sqlite:///…) must hold the demo's real concurrency: API requests
# written while a webhook is handled in the same server. WAL lets readers go on beside the one writer; IMMEDIATE
# takes the write lock when a transaction begins (a deferred one that reads and then writes cannot wait for it:
# SQLite fails it at once with "database is locked"); the busy timeout is how long a writer waits for its turn.
# Options given in DATABASE_URL's query string win over these.
# Fixed: SQLite serves one host's demo or trial, where no write should wait longer (`?timeout=` in the URL wins).
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        **DATABASES["default"].get("OPTIONS", {}),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    # django-redis: one redis-py client per backend on a pool shared by the process. Its errors reach the caller
    # (IGNORE_EXCEPTIONS stays off): core.cache decides what an outage costs (a fallback, never a 500).
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # Fixed: two installs on one Redis would share the broker's queues as well; each needs a database of its
            # own in REDIS_URL (redis://host:6379/1), which separates the cache too.
            "KEY_PREFIX": "tollgate",
            "TIMEOUT": 300,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
else:
    # One process's memory (the demo, the tests): room for an hour of entitlement changes (the change feed), where
    # Django's default of 300 entries would cull them and make every client start over.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "tollgate",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        }
    }

# --- Celery ---------------------------------------------------------------------------------------------
# Without Redis, kombu's in-process memory transport. Its URL names a host although the transport has none: kombu
# logs "No hostname was supplied" each time it resolves a URL without one (every task a command queues).
EMBEDDED_BROKER_URL = "memory://localhost/"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or EMBEDDED_BROKER_URL)
# Without a broker there is no worker either: run tasks in-process so the embedded mode still does the work.
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL.startswith("memory://")
)


CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every broker call has a short timeout: a frozen Redis (partitioned, paused) must fail a `.delay()` in seconds,
# not hang the request that queued it for TCP's own timeouts. Callers that queue after a commit catch the
# failure and answer success; the beat sweep queues what is still due once the broker is back.
BROKER_TIMEOUT_SECONDS = env.float("BROKER_TIMEOUT_SECONDS", default=2.0)
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT_SECONDS


# Each kind of work has a queue of its own, so that an operator scales it by adding a worker for that queue
# (`celery -A config worker -Q stripe-events`; docker-compose.yml runs one worker per queue): Stripe's events
# (CPU-bound: a worker with one process per CPU, Celery's default), deliveries to tenants' endpoints (waiting on
# the network: more processes than CPUs) and the calls Tollgate makes to Stripe in the background (waiting on
# Stripe). Everything else (beat's sweeps, housekeeping) stays on `celery`. A worker started without `-Q` consumes
# every queue, as one worker did before the queues were split.
TASK_QUEUES = ("celery", "stripe-events", "deliveries", "stripe-calls")
CELERY_TASK_ROUTES = {
    "webhooks.tasks.process_stripe_event": {"queue": "stripe-events"},
    "webhooks.tasks.deliver_event": {"queue": "deliveries"},
    "billing.tasks.customer_sync_to_stripe": {"queue": "stripe-calls"},
    "entitlements.tasks.usage_report_to_stripe": {"queue": "stripe-calls"},
    "billing.tasks.usage_correction_to_stripe": {"queue": "stripe-calls"},
    "billing.tasks.late_usage_to_stripe": {"queue": "stripe-calls"},
    "billing.tasks.auto_recharge_charge": {"queue": "stripe-calls"},
    "billing.tasks.adoption_run": {"queue": "stripe-calls"},
    "billing.tasks.reconcile_all": {"queue": "stripe-calls"},
}


def task_queues(queue_type: str, exchange_type: str) -> list[Any]:
    """The queues every worker declares (and consumes, without `-Q`), each bound to Celery's default exchange by
    its own name; quorum queues on RabbitMQ (replicated and durable), as the default queue was."""
    from kombu import Exchange, Queue

    exchange = Exchange("celery", type=exchange_type)
    arguments = {"x-queue-type": "quorum"} if queue_type == "quorum" else None
    return [Queue(name, exchange, routing_key=name, queue_arguments=arguments) for name in TASK_QUEUES]


def broker_settings(url: str) -> dict[str, Any]:
    """The Celery settings a broker URL implies (producers and workers must agree on them).

    Redis goes through kombu's own Redis transport, with short socket timeouts. RabbitMQ gets quorum queues
    (replicated and durable: a queued task outlives a broker restart), publisher confirms (a `.delay()` returns
    once RabbitMQ holds the task, or fails), and a topic exchange, so that a countdown (a retry's backoff) waits
    in RabbitMQ's native delayed delivery instead of in a worker's memory, as quorum queues need (Celery >= 5.5;
    the worker detects them and drops the global QoS they refuse)."""
    scheme = url.partition("://")[0]
    if scheme in ("amqp", "amqps", "pyamqp"):
        return {
            "CELERY_TASK_DEFAULT_QUEUE_TYPE": "quorum",
            "CELERY_TASK_DEFAULT_EXCHANGE_TYPE": "topic",
            "CELERY_TASK_QUEUES": task_queues("quorum", "topic"),
            "CELERY_BROKER_TRANSPORT_OPTIONS": {
                "confirm_publish": True,
                "read_timeout": BROKER_TIMEOUT_SECONDS,
                "write_timeout": BROKER_TIMEOUT_SECONDS,
            },
        }
    return {
        "CELERY_TASK_DEFAULT_QUEUE_TYPE": "classic",
        "CELERY_TASK_DEFAULT_EXCHANGE_TYPE": "direct",
        "CELERY_TASK_QUEUES": task_queues("classic", "direct"),
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            "socket_timeout": BROKER_TIMEOUT_SECONDS,
            "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
        },
    }


_BROKER = broker_settings(CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE_TYPE = _BROKER["CELERY_TASK_DEFAULT_QUEUE_TYPE"]
CELERY_TASK_DEFAULT_EXCHANGE_TYPE = _BROKER["CELERY_TASK_DEFAULT_EXCHANGE_TYPE"]
CELERY_BROKER_TRANSPORT_OPTIONS = _BROKER["CELERY_BROKER_TRANSPORT_OPTIONS"]
CELERY_TASK_QUEUES = _BROKER["CELERY_TASK_QUEUES"]
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Celery closes Django's database connections around every task unless told to reuse them; reconnecting to
# PostgreSQL per task would cost more than most tasks do. Fixed: it bounds only a healthy connection's age; a broken
# one is dropped before a Stripe event's task (core.db.connections_check) or fails its task into a retry.
CELERY_DB_REUSE_MAX = 1000
CELERY_TIMEZONE = "UTC"
# Celery's own root-logger setup would drop the `celery` logger's handlers: task outcomes and retries would never
# reach the log, and errors would skip the JSON format and redaction. Django's LOGGING stays in charge.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A file the worker and beat touch while alive, for a container healthcheck (core/heartbeat.py); empty: none.
HEARTBEAT_FILE = env("HEARTBEAT_FILE", default="")
# Each beat run of a task gets its own correlation id in the logs (core/task_context.py).
CELERY_BEAT_SCHEDULER = "core.task_context:BeatScheduler"
CELERY_BEAT_SCHEDULE = {
    "purge-idempotency-keys": {"task": "core.tasks.idempotency_keys_purge", "schedule": crontab(minute=17)},
    "requeue-stuck-stripe-events": {"task": "webhooks.tasks.requeue_stuck_stripe_events", "schedule": 30.0},
    "sweep-webhook-deliveries": {"task": "webhooks.tasks.deliveries_sweep", "schedule": 15.0},
    "reconcile-with-stripe": {
        "task": "billing.tasks.reconcile_all",
        "schedule": crontab(hour=3, minute=41),
    },
    # The revenue figures' journal folded into their totals (billing.models.revenue): reads stay flat.
    "fold-revenue-figures": {
        "task": "billing.tasks.revenue_fold",
        "schedule": 60.0,
    },
    # Revenue schedules written from what the mirror changed (nightly: all of it), so a close reads them.
    "sync-revenue-schedules": {"task": "billing.tasks.recognition_sync_all", "schedule": 600.0},
    "repair-revenue-schedules": {
        "task": "billing.tasks.recognition_sync_all",
        "schedule": crontab(hour=3, minute=29),
        "kwargs": {"full": True},
    },
    "repair-revenue-figures": {
        "task": "billing.tasks.revenue_figures_repair",
        "schedule": crontab(hour=3, minute=11),
    },
    # Refunds asked whose answer never came, and refunds pending at Stripe for a while: read from Stripe.
    "settle-refunds": {
        "task": "billing.tasks.refunds_settle_sweep",
        "schedule": 120.0,
    },
    "expire-due-payments": {
        "task": "billing.tasks.payments_expire_due",
        "schedule": 60.0,
    },
    # Customer email and name changes whose Stripe update was never queued (a broker outage) or ran out of retries.
    "sync-customers-to-stripe": {
        "task": "billing.tasks.customers_sync_to_stripe_sweep",
        "schedule": 60.0,
    },
    # Usage of features sold with a metered price: failed reports whose backoff passed, and any never queued.
    "report-usage-to-stripe-meters": {
        "task": "entitlements.tasks.usage_report_sweep",
        "schedule": 30.0,
    },
    # Usage events' monthly partitions: the coming months made, and USAGE_RETENTION_MONTHS applied when set.
    "maintain-usage-partitions": {
        "task": "entitlements.tasks.usage_partitions_maintain",
        "schedule": crontab(hour=2, minute=23),
    },
    # Finished webhooks past WEBHOOK_RETENTION_DAYS pruned in batches (core/retention.py), each table its task.
    "prune-stripe-events": {
        "task": "webhooks.tasks.stripe_events_prune",
        "schedule": crontab(minute=47),
    },
    "prune-webhook-deliveries": {
        "task": "webhooks.tasks.deliveries_prune",
        "schedule": crontab(minute=53),
    },
    # Holds past their expiry (a process that placed one and died, or never confirmed): their units go back.
    "expire-entitlement-holds": {
        "task": "entitlements.tasks.holds_expire",
        "schedule": 30.0,
    },
    # Plan credits granted every month or week of a paid period (ProductFeature.cadence): each as it comes due.
    "grant-plan-credits-due": {
        "task": "entitlements.tasks.plan_credits_grant_due",
        "schedule": 30.0,
    },
    # Auto-recharges whose charge did not finish (a task lost, a process killed after Stripe acted): continued.
    "resume-auto-recharges": {
        "task": "billing.tasks.auto_recharges_resume",
        "schedule": 60.0,
    },
    # Customers whose margin this month fell below their project's threshold: `customer.margin_low`, once a month.
    "check-margin-alerts": {
        "task": "billing.tasks.margin_alerts_sweep",
        "schedule": crontab(minute=29),
    },
    # Subscriptions whose first invoice was voided unpaid, in projects that end them so: canceled at Stripe.
    "end-first-invoice-voids": {
        "task": "billing.tasks.first_invoice_voids_sweep",
        "schedule": 600.0,
    },
    # Moves to another product version scheduled for a period's end (billing.services.version_moves): made final.
    "apply-version-moves-due": {"task": "billing.tasks.version_moves_due", "schedule": 60.0},
}

# --- Internationalisation and time ----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Moments in the back office as "2026-11-23 16:02:42Z" (config/formats).
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(VAR_DIR / "static"))
# Files served at the site's root by WhiteNoise, as browsers ask for them there (/favicon.ico).
WHITENOISE_ROOT = str(BASE_DIR / "core" / "public")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API ------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["projects.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["projects.permissions.IsProjectKey"],
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate API",
    "DESCRIPTION": (
        "Multi-tenant billing and entitlements. Authenticate with `Authorization: Bearer <key>`: a project key "
        "for tenant endpoints, a platform key for `/api/v1/projects`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PREPROCESSING_HOOKS": ["core.urls.schema_without_slash_variants"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.error_responses_and_headers",
        "core.schema.probe_paths",
        "webhooks.schema.stripe_intake_paths",
        "projects.schema.security_schemes_in_order",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentFlowEnum": "projects.models.Project.Flow",
        "DeliveryStatusEnum": "events.models.Delivery.Status",
        "ProjectStatusEnum": "projects.models.Project.Status",
        "ProrationRuleEnum": "projects.models.Project.ProrationRule",
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "PlatformKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An operators' platform key (`tg_plat_…`): only `/api/v1/projects…`.",
            },
        }
    },
}

# Largest request body the API accepts; bigger ones get 413 before anything is parsed. Fixed: a megabyte holds the
# largest usage batch the API accepts (1,000 events) several times over, and Stripe's event bodies.
API_MAX_BODY_BYTES = 1_048_576
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# Requests per key per minute; 0 disables rate limiting.
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=1200)
# Requests per client address per minute to the endpoints read without a key (the public plans); 0 disables.
PUBLIC_RATE_LIMIT_PER_MINUTE = env.int("PUBLIC_RATE_LIMIT_PER_MINUTE", default=300)
# Fixed at Stripe's own 24 hours, so a client's retry behaves against Tollgate as it does against Stripe.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# A request that claimed a key and never finished (a killed process) frees it after this long. Fixed: longer than
# any request may run (gunicorn's --timeout 90, three Stripe tries of 20 s), short enough for a client's retry.
IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=300)
# Authenticated keys are cached in the shared cache and, for at most AUTH_LOCAL_CACHE_SECONDS, in-process.
# Fixed: revocation deletes the shared entry at once, so its age only bounds a key's reads of PostgreSQL.
AUTH_CACHE_SECONDS = 300
# Fixed: a revocation reaches every process within a second, and a busy process reads the shared cache once a
# second per key, not per request.
AUTH_LOCAL_CACHE_SECONDS = 1.0
# Local entitlement checks (tollgate_client.local): how long a signed snapshot may be used at most, the bound on its
# staleness when the client does not poll the change feed; and the feed's own per-key polling budget.
ENTITLEMENT_SNAPSHOT_SECONDS = env.int("ENTITLEMENT_SNAPSHOT_SECONDS", default=60)
# Fixed: 100 polls a second per key, far beyond what one client's feed needs (`wait` holds a poll up to 10 s),
# and each costs one Redis round trip.
ENTITLEMENT_CHANGES_RATE_PER_MINUTE = 6000
# How often a process re-reads the cache epoch (core.models.CacheEpoch) from the database: after an invalidation
# that could not reach Redis, answers cached before it are served by a process for at most this long. Fixed: one
# indexed read a second per process costs nothing, and a second is as stale as any cached answer should be.
CACHE_EPOCH_CHECK_SECONDS = 1.0
# Fixed: `last_used_at` is for people reading the back office, to whom a minute's precision is all there is.
API_KEY_TOUCH_INTERVAL_SECONDS = 60
# Usage events' monthly partitions (PostgreSQL; entitlements/services/usage_partitions.py): months made ahead of
# the current one by the daily beat task, and retention — whole months dropped once they ended more than this many
# months before the current one began (0: keep everything, the default). Fixed ahead: three months outlast any
# outage of the daily task, and an empty partition costs nothing.
USAGE_PARTITIONS_AHEAD = 3
USAGE_RETENTION_MONTHS = env.int("USAGE_RETENTION_MONTHS", default=0)
# Webhooks kept as records (core/retention.py; docs/operations.md "Retention"): Stripe events processed or ignored
# and deliveries to tenants succeeded or given up are pruned this many days after they last changed (0: keep
# everything). At least 31: the stored Stripe event is what stops a second delivery of its id from being applied
# again, and Stripe can deliver (and `replay_webhooks --fetch-missing` list) an event for 30 days.
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=35)
if 0 < WEBHOOK_RETENTION_DAYS < 31:  # refused at start, as core.retention.retention_cutoff refuses it
    raise ImproperlyConfigured(
        "WEBHOOK_RETENTION_DAYS must be 0 (keep everything) or at least 31: Stripe can deliver an event again for "
        "30 days, and its stored row is what keeps it from being applied twice."
    )

# --- Per-tenant fairness (docs/operations.md, "Per-tenant fairness") --------------------------------------------
# Usage intake requests (POST /usage, /usage/batch, /entitlements/consume) per project per second, over all its
# keys, besides each key's API_RATE_LIMIT_PER_MINUTE; the excess gets 429 with Retry-After. 0: no project limit.
PROJECT_USAGE_RATE_LIMIT_PER_SECOND = env.int("PROJECT_USAGE_RATE_LIMIT_PER_SECOND", default=100)
# Stripe events and deliveries need no setting: a free worker takes the next by the fair claim in SQL (the
# project, or endpoint, with the fewest running first; core/claims.py).

# `GET /metrics` (Prometheus) requires `Authorization: Bearer <METRICS_TOKEN>` when set.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# --- Secrets at rest ------------------------------------------------------------------------------------
# Comma-separated Fernet keys; the first encrypts, all decrypt (MultiFernet), so keys can be rotated.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- Stripe ---------------------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")

# --- Logging --------------------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "core.logging.RequestContextFilter"},
        "redact": {"()": "core.logging.RedactingFilter"},
    },
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context", "redact"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "celery": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # The SDK logs every request at INFO; our gateway logs what matters (failures) itself.
        "stripe": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # The MCP SDK logs each stateless request's session at INFO; the MCP server logs one line per request itself
        # (agents.mcp_http, as `tollgate.request`).
        "mcp": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
APPEND_SLASH = False
STRIPE_API_VERSION = "2026-10-28.endive"
# The nightly reconciliation applies Stripe's state where local rows drifted (Stripe is the source of truth).
RECONCILE_AUTOFIX = env.bool("RECONCILE_AUTOFIX", default=True)
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# Usage reported to Stripe billing meters is paced under Stripe's limit, fixed: Stripe documents 1,000 meter events
# per second per account for everyone.
STRIPE_METER_EVENTS_PER_SECOND = 1000

# --- Outbound webhooks (events to tenant endpoints) -----------------------------------------------------------
# What a tenant endpoint has to answer 2xx in: part of the delivery contract (docs/events.md), the same for every
# install, as Stripe's own is for its webhooks.
OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = 10.0
OUTBOUND_WEBHOOK_RETRY_HOURS = env.int("OUTBOUND_WEBHOOK_RETRY_HOURS", default=72)
# Fixed: a day of every delivery failing is an endpoint gone, not a bad hour (a `webhook_endpoint.disabled` event).
OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS = 24
# Fixed: a default only; the tenant rolling a secret chooses the old one's overlap (`overlap_seconds`) per roll.
OUTBOUND_WEBHOOK_SECRET_OVERLAP_SECONDS = 86_400
# Embedded/local/test: http to localhost allowed, private addresses reachable. Production turns both off.
OUTBOUND_WEBHOOK_REQUIRE_HTTPS = env.bool("OUTBOUND_WEBHOOK_REQUIRE_HTTPS", default=False)
OUTBOUND_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("OUTBOUND_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=True)
