# Tollgate: one image for web, worker, beat and the Stripe emulator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app
RUN useradd --create-home --uid 10001 tollgate

COPY requirements/ requirements/
RUN pip install -r requirements/prod.txt

COPY . .
# collectstatic needs settings that load; these build-time values never reach a running container.
RUN SECRET_KEY=build-only FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1rZXktbmV2ZXItdXNlZC1hdC1ydW4= \
    python manage.py collectstatic --noinput -v0 && mkdir -p var /data && chown -R tollgate var /data
# /data holds the Stripe emulator's state (compose mounts a named volume there, which starts with this directory's
# owner, so the unprivileged user can write it).

USER tollgate
EXPOSE 8000 12111
# --timeout and --graceful-timeout as docker-compose.yml's web explains (a request may wait on Stripe 3 × 20 s).
CMD ["sh", "-c", "python manage.py migrate_locked && exec gunicorn config.wsgi --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-4} --timeout 90 --graceful-timeout 90 --access-logfile -"]
