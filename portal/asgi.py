"""ASGI entry point, for servers that speak ASGI."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_asgi_application()

from portal.startup import auth0_require  # noqa: E402  (needs the settings configured above)

auth0_require(process="web")
