"""Development and `make demo`: debug on, embedded defaults, a fixed development encryption key."""

import os
from pathlib import Path

import environ

# What the last `make demo` in this checkout recorded for the commands run beside it (the Stripe emulator's
# address, the demo's credentials file), in $DEMO_VAR/demo.env (var/demo.env by default): `manage.py …` reaches
# the demo whatever EMULATOR_PORT it was given. Read before everything else, so its values count as the
# environment's; a variable really set in the environment wins. Development only: production and the tests never
# read it.
DEMO_ENV_FILE = Path(os.environ.get("DEMO_VAR") or Path(__file__).resolve().parents[2] / "var") / "demo.env"
if DEMO_ENV_FILE.is_file():
    environ.Env.read_env(DEMO_ENV_FILE, overwrite=False)

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import env  # noqa: E402

DEBUG = env.bool("DEBUG", default=True)
# The demo's pages follow DEBUG (config/settings/base.py): on in development, off wherever DEBUG is off.
DEMO_PAGES = DEBUG
SECRET_KEY = env("SECRET_KEY", default="django-insecure-local-development-only")
# A fixed key so local data stays readable across restarts; never used by production settings.
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["bG9jYWwtZGV2ZWxvcG1lbnQta2V5LWRvLW5vdC11c2U="]
)
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405
# The bundled emulator (started by `make demo`) stands in for Stripe unless real credentials are configured.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="http://127.0.0.1:12111")
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="sk_test_tollgate_local_demo")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="pk_test_tollgate_local_demo")

# `manage.py runserver` answers as production's server does (config/devserver: static files through WhiteNoise,
# with its headers, and each answer in one write on a TCP_NODELAY socket); the demo's static files are then served
# exactly as production serves them, CORS header included.
INSTALLED_APPS = ["config.devserver", "whitenoise.runserver_nostatic", *INSTALLED_APPS]  # noqa: F405

# Development serves static files from the apps (WhiteNoise's finders, DEBUG on): no collectstatic, so no
# STATIC_ROOT unless one is asked for (WhiteNoise warns about a configured one that does not exist).
STATIC_ROOT = env("STATIC_ROOT", default=None)
