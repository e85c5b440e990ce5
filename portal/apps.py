"""App config for the portal app."""

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from celery import signals

        from portal import logs

        # weak=False: the handlers are module functions, but say it, since Celery holds them.
        signals.task_prerun.connect(logs.task_started, weak=False)
        signals.task_postrun.connect(logs.task_ended, weak=False)
