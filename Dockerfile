# syntax=docker/dockerfile:1
# One image for web (gunicorn), Celery worker and Celery beat; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 atrium

# Dependencies first, from the lock (hashes checked), so code changes reuse this layer.
# deploy/install-runtime.sh is what tests/deploy/test_runtime_image.py replays in CI.
COPY requirements/runtime.txt requirements/
COPY deploy/install-runtime.sh deploy/
RUN sh deploy/install-runtime.sh deps

COPY . .
RUN sh deploy/install-runtime.sh project \
 && SECRET_KEY=build-only DEBUG=false python manage.py collectstatic --no-input \
 && chown -R atrium:atrium /app/var

USER atrium
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
