# Tollgate: one image for web, worker, beat, the MCP server (uvicorn config.mcp:app) and the Stripe emulator.
#
# BASE_IMAGE: the official python:3.11-slim by default. Where no image registry is reachable, a Debian bookworm
# image does (.ci/compose-check imports one built by debootstrap): Python 3.11 then comes from Debian's packages.
# Python packages: from docker/wheelhouse/ when it holds wheels (`pip wheel -r requirements/prod.txt -w
# docker/wheelhouse` on a host that reaches PyPI, with the image's Python version), from PyPI otherwise. The wheels
# stay in the build stages: the image holds the installed packages only.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PATH=/opt/venv/bin:$PATH
# The official image has Python 3.11 with venv; plain Debian gets them from apt. Either way the packages live in
# the venv /opt/venv, first on PATH: `python`, `gunicorn` and `celery` are the venv's on both bases.
RUN set -eu; \
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    useradd --create-home --uid 10001 tollgate

FROM runtime AS packages
COPY requirements/ /tmp/requirements/
COPY docker/wheelhouse/ /tmp/wheelhouse/
RUN set -eu; \
    python3 -m venv /opt/venv; \
    if ls /tmp/wheelhouse/*.whl >/dev/null 2>&1; then \
      pip install --no-index --find-links /tmp/wheelhouse -r /tmp/requirements/prod.txt; \
    else \
      pip install -r /tmp/requirements/prod.txt; \
    fi

FROM runtime AS source
COPY . /src/
RUN rm -f /src/docker/wheelhouse/*.whl

FROM runtime
WORKDIR /app
COPY --from=packages /opt/venv/ /opt/venv/
COPY --from=source /src/ /app/
# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE (and /app not the runtime user's to write) every process
# would otherwise compile each module it imports from source, at every start and, for a module imported late, inside
# the request or task that first needs it.
RUN python -m compileall -q /app
# collectstatic needs settings that load; these build-time values never reach a running container.
RUN SECRET_KEY=build-only FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1rZXktbmV2ZXItdXNlZC1hdC1ydW4= \
    python manage.py collectstatic --noinput -v0 && mkdir -p var/prometheus /data && chown -R tollgate var /data
# /data holds the Stripe emulator's state (compose mounts a named volume there, which starts with this directory's
# owner, so the unprivileged user can write it). var/prometheus is compose's PROMETHEUS_MULTIPROC_DIR for web: it
# must exist before any process of that container imports prometheus_client (`docker compose run web manage.py …`
# included); gunicorn empties it at start (config/gunicorn.py).

USER tollgate
EXPOSE 8000 8001 12111
# --timeout and --graceful-timeout as docker-compose.yml's web explains (a request may wait on Stripe 3 × 20 s).
CMD ["sh", "-c", "python manage.py migrate_locked && exec gunicorn config.wsgi --config python:config.gunicorn --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-4} --timeout 90 --graceful-timeout 90 --access-logfile -"]
