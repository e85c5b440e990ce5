"""The Django project and the portal app; the Celery app loads with it so tasks can be sent."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
