"""App config for the access app."""

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        # Kept viewers go stale when a membership is written (its signals).
        import access.viewers  # noqa: F401
