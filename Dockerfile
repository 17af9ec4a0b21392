# syntax=docker/dockerfile:1
# Warden production image: gunicorn (web), Celery worker/beat and `manage.py migrate` all run
# from it; docker-compose.yml picks the command. Runtime dependencies come from uv.lock
# (`uv sync --frozen --no-dev`) into /opt/venv.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    DJANGO_ENV=prod \
    WARDEN_VAR_DIR=/app/var

# Pango/HarfBuzz and a font for WeasyPrint (PDF evidence reports).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN pip install "uv>=0.13,<0.14"

WORKDIR /app

# Dependencies first, so that code changes do not invalidate this layer.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

COPY . .

# Bytecode for Warden's own packages, as UV_COMPILE_BYTECODE gives the virtualenv's:
# PYTHONDONTWRITEBYTECODE keeps processes from writing any, so without this every gunicorn
# worker, Celery worker and `manage.py` run would compile them again at start.
RUN python -m compileall -q -j0 datafiles core audit registry governance

# `warden-gate`, the CI client of the gate, is a distribution of its own (standard library
# only); installed here so that the image can also serve as a pipeline step.
RUN uv pip install --python /opt/venv/bin/python --no-deps ./clients/warden-gate

# Static files are collected at build time (prod uses WhiteNoise's manifest storage). prod
# settings insist on their variables, so placeholders are given for this step only.
RUN SECRET_KEY=collectstatic-only \
    ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://build@localhost/build \
    MIGRATION_DATABASE_URL=postgres://build@localhost/build \
    CELERY_BROKER_URL=memory:// \
    AUDIT_LOG_ORIGIN=build.invalid/collectstatic \
    python manage.py collectstatic --noinput

RUN groupadd --system --gid 10001 warden \
    && useradd --system --uid 10001 --gid warden --home-dir /app --shell /usr/sbin/nologin warden \
    && mkdir -p /app/var/media /app/var/beat \
    && chown -R warden:warden /app/var/media /app/var/beat

USER warden
EXPOSE 8000
# Workers, threads, timeouts and logs: gunicorn.conf.py (WEB_CONCURRENCY, WEB_THREADS).
CMD ["gunicorn", "--config=/app/gunicorn.conf.py"]
