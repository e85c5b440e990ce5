"""What a process needs of the settings before it serves, checked when that process starts."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def auth0_require(*, process: str) -> None:
    """Refuse to start web or a worker without the Auth0 settings they call the tenant with.

    Settings collect what is missing rather than failing on import, so that `migrate`, beat and
    `collectstatic` start from the same environment without them.
    """
    missing = settings.AUTH0_MISSING
    if missing:
        raise ImproperlyConfigured(
            f"Set {', '.join(missing)}: the {process} process needs them with a real Auth0 "
            "tenant when DEBUG is off (see .env.example)."
        )
