"""The Celery app: configured from Django settings (CELERY_*), tasks from each app's tasks.py."""

import os
import sys

from celery import Celery, signals
from django.core.exceptions import ImproperlyConfigured

from portal.startup import auth0_require

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("atrium")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _auth0_required(**_: object) -> None:
    try:
        auth0_require(process="worker")
    except ImproperlyConfigured as missing:
        # Celery logs and ignores a signal handler's exception; the worker must not start.
        print(f"ImproperlyConfigured: {missing}", file=sys.stderr)
        raise SystemExit(1) from missing
