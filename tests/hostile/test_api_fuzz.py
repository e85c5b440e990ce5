"""schemathesis over /api/openapi.json: whatever the document allows or forbids, no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from access.audit import SYSTEM
from access.models import AccessRequest
from access.services import access_request_create
from catalog.selectors import entity_by_ref
from portal.models import User
from portal.scopes import API_SCOPES
from portal.wsgi import application
from tests.helpers import DevTenant, own_role
from tests.portal.auth_helpers import client_token

# Loaded as the test module is collected: the document needs no database. (schemathesis'
# fixture-based loader, `schemathesis.pytest.from_fixture`, does not run under pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application).exclude(
    # Registering a location reads its URL: generated ones would leave the machine.
    method="POST",
    path="/api/catalog/locations",
)


@pytest.fixture
def rows(demo_catalog: None) -> None:  # noqa: F811
    """A catalog and an access request for generated paths and bodies to hit."""
    own_role("payments.viewer", "team-payments")
    ada = User.objects.create_user("auth0|fuzz-ada", "ada@example.com", "Ada", email_verified=True)
    entity = entity_by_ref(ref="component:default/payments-api")
    assert entity is not None
    access_request_create(requester=ada, entity=entity, role="payments.viewer",
                          reason="fuzzing", duration=timedelta(days=1), actor=SYSTEM)  # fmt: skip
    assert AccessRequest.objects.count() == 1


@pytest.fixture
def one_connection() -> Iterator[None]:
    """As Django's test client does: a request's end must not close the test's connection
    (schemathesis calls the WSGI application through its own client)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(devtenant: DevTenant) -> dict[str, str]:
    """A machine client granted every scope, so that handlers are reached, not just 401s."""
    return {"Authorization": f"Bearer {client_token(devtenant, list(API_SCOPES))}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],  # fmt: skip
)
def test_no_operation_answers_a_server_error(
    case: Any, bearer: dict[str, str], rows: None, one_connection: None
) -> None:
    case.call_and_validate(headers=bearer, checks=[not_a_server_error, response_schema_conformance])
