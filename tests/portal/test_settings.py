"""Settings load from the environment alone, with safe defaults and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portal.celery import app as celery_app
from tests.helpers import PRODUCTION, load_settings


def settings_of(tmp_path: Path, **variables: str) -> dict[str, Any]:
    loaded = load_settings(tmp_path, **variables)
    assert loaded.returncode == 0, loaded.stderr
    result: dict[str, Any] = json.loads(loaded.stdout)
    return result


def test_without_database_or_redis_dev_runs_on_sqlite_and_the_filesystem_broker(
    tmp_path: Path,
) -> None:
    loaded = settings_of(tmp_path, DEBUG="true")

    assert loaded["DATABASE"]["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["DATABASE"]["NAME"] == str(tmp_path / "var" / "atrium.sqlite3")
    assert loaded["BROKER"] == "filesystem://"
    broker_folder = tmp_path / "var" / "broker" / "queue"
    assert loaded["BROKER_OPTIONS"]["data_folder_in"] == str(broker_folder)
    assert loaded["BROKER_OPTIONS"]["data_folder_out"] == str(broker_folder)
    assert broker_folder.is_dir()
    assert loaded["CACHE"]["BACKEND"].endswith("LocMemCache")
    assert loaded["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_dev_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = settings_of(tmp_path, DEBUG="true")["SECRET_KEY"]
    second = settings_of(tmp_path, DEBUG="true")["SECRET_KEY"]

    assert len(first) >= 50
    assert first == second
    assert (tmp_path / "var" / "secret_key").read_text().strip() == first


def test_database_and_redis_urls_are_used_when_set(tmp_path: Path) -> None:
    loaded = settings_of(
        tmp_path,
        DEBUG="true",
        DATABASE_URL="postgres://atrium:s3cret@db.internal:5433/atrium",
        REDIS_URL="redis://cache.internal:6379/2",
    )

    assert loaded["DATABASE"] == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "atrium",
        "HOST": "db.internal",
        "PORT": 5433,
        "USER": "atrium",
    }
    assert loaded["BROKER"] == "redis://cache.internal:6379/2"
    assert loaded["CACHE"]["BACKEND"] == "portal.caches.RedisCache"
    assert loaded["CACHE"]["LOCATION"] == "redis://cache.internal:6379/2"


def test_celery_broker_url_overrides_the_broker_but_not_the_cache(tmp_path: Path) -> None:
    loaded = settings_of(
        tmp_path,
        DEBUG="true",
        REDIS_URL="redis://cache.internal:6379/2",
        CELERY_BROKER_URL="redis://queue.internal:6379/0",
    )

    assert loaded["BROKER"] == "redis://queue.internal:6379/0"
    assert loaded["CACHE"]["LOCATION"] == "redis://cache.internal:6379/2"


def test_missing_secret_key_with_debug_off_names_the_variable(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path)

    assert loaded.returncode != 0
    assert "ImproperlyConfigured" in loaded.stderr
    assert "SECRET_KEY" in loaded.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_production_defaults_are_safe(tmp_path: Path) -> None:
    loaded = settings_of(tmp_path, **PRODUCTION, PORTAL_BASE_URL="https://atrium.example.com/")

    assert loaded["DEBUG"] is False
    assert loaded["ALLOWED_HOSTS"] == ["atrium.example.com"]
    assert loaded["CSRF_TRUSTED_ORIGINS"] == ["https://atrium.example.com"]
    assert loaded["PORTAL_BASE_URL"] == "https://atrium.example.com"
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["SESSION_COOKIE_HTTPONLY"] is True
    # Without a proxy in front, the app cannot tell https requests apart: no HSTS yet.
    assert loaded["SECURE_HSTS_SECONDS"] == 0


def test_behind_a_tls_proxy_https_is_enforced_with_hsts(tmp_path: Path) -> None:
    loaded = settings_of(
        tmp_path,
        **PRODUCTION,
        PORTAL_BASE_URL="https://atrium.example.com",
        BEHIND_TLS_PROXY="true",
    )

    assert loaded["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_HSTS_SECONDS"] == 31_536_000


def test_plain_http_base_url_is_refused_in_production(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path, **PRODUCTION, PORTAL_BASE_URL="http://atrium.example.com")

    assert loaded.returncode != 0
    assert "PORTAL_BASE_URL must use https://" in loaded.stderr


def test_plain_http_on_loopback_is_accepted_in_production(tmp_path: Path) -> None:
    loaded = settings_of(tmp_path, **PRODUCTION, PORTAL_BASE_URL="http://127.0.0.1:8000")

    assert loaded["ALLOWED_HOSTS"] == ["127.0.0.1"]
    assert loaded["SESSION_COOKIE_SECURE"] is False


def test_auth0_domain_gives_the_issuer_and_mgmt_defaults_to_the_web_app(tmp_path: Path) -> None:
    loaded = settings_of(tmp_path, **PRODUCTION)

    assert loaded["AUTH0_ISSUER"] == "https://acme.eu.auth0.com/"
    assert loaded["AUTH0_MGMT_CLIENT_ID"] == "portal-client"
    assert loaded["AUTH0_MGMT_CLIENT_SECRET"] == "portal-secret"


def test_issuer_url_is_used_exactly_as_given(tmp_path: Path) -> None:
    loaded = settings_of(tmp_path, **PRODUCTION, AUTH0_ISSUER_URL="https://login.example.com/oidc")

    assert loaded["AUTH0_ISSUER"] == "https://login.example.com/oidc"


def test_plain_http_issuer_is_refused_unless_loopback(tmp_path: Path) -> None:
    refused = load_settings(tmp_path, **PRODUCTION, AUTH0_ISSUER_URL="http://login.example.com/")
    loopback = settings_of(tmp_path, **PRODUCTION, AUTH0_ISSUER_URL="http://127.0.0.1:9000/")

    assert refused.returncode != 0
    assert "AUTH0_ISSUER_URL" in refused.stderr
    assert loopback["AUTH0_ISSUER"] == "http://127.0.0.1:9000/"


IMPORT_WSGI = "import portal.wsgi"


def test_migrate_needs_no_tenant_but_web_names_what_is_missing(tmp_path: Path) -> None:
    # migrate, beat and collectstatic start from the same .env before the tenant is filled in.
    without_tenant = load_settings(tmp_path, SECRET_KEY="x" * 50)
    no_domain = load_settings(tmp_path, IMPORT_WSGI, SECRET_KEY="x" * 50)
    no_client = load_settings(
        tmp_path, IMPORT_WSGI, SECRET_KEY="x" * 50, AUTH0_DOMAIN="acme.eu.auth0.com"
    )
    complete = load_settings(tmp_path, IMPORT_WSGI, **PRODUCTION)

    assert without_tenant.returncode == 0, without_tenant.stderr
    assert no_domain.returncode != 0
    assert "Set AUTH0_DOMAIN (or AUTH0_ISSUER_URL), AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET" in (
        no_domain.stderr
    )
    assert "the web process needs them" in no_domain.stderr
    assert "Set AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET:" in no_client.stderr
    assert complete.returncode == 0, complete.stderr


@pytest.mark.parametrize(
    ("name", "placeholder"),
    [("SECRET_KEY", "change-me-to-a-long-random-string"), ("POSTGRES_PASSWORD", "change-me")],
)
def test_the_env_examples_placeholders_are_refused_in_production(
    tmp_path: Path, name: str, placeholder: str
) -> None:
    refused = load_settings(tmp_path, **(PRODUCTION | {name: placeholder}))
    in_dev = load_settings(tmp_path, **(PRODUCTION | {name: placeholder}), DEBUG="true")

    assert refused.returncode != 0
    assert f"{name} is still the placeholder from .env.example" in refused.stderr
    assert in_dev.returncode == 0, in_dev.stderr


PRINT_DATABASE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({k: db.get(k) for k in ("ENGINE", "NAME", "HOST", "PORT", "USER", "PASSWORD")}))
"""


def test_the_database_is_built_from_postgres_parts_so_any_password_works(tmp_path: Path) -> None:
    password = "$p@ss:w/rd?#%20 x"
    parts = {
        "POSTGRES_HOST": "db",
        "POSTGRES_USER": "atrium",
        "POSTGRES_DB": "atrium",
        "POSTGRES_PASSWORD": password,
    }
    loaded = load_settings(tmp_path, PRINT_DATABASE, **PRODUCTION, **parts)
    url_wins = load_settings(
        tmp_path, PRINT_DATABASE, **PRODUCTION, **parts,
        DATABASE_URL="postgres://other:pw@db.internal:5433/other",
    )  # fmt: skip

    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "atrium",
        "HOST": "db",
        "PORT": 5432,
        "USER": "atrium",
        "PASSWORD": password,
    }
    assert json.loads(url_wins.stdout)["HOST"] == "db.internal"


def test_dev_without_a_tenant_uses_the_devtenant(tmp_path: Path) -> None:
    loaded = settings_of(tmp_path, DEBUG="true")

    assert loaded["AUTH0_ISSUER"] == "http://127.0.0.1:8400/"
    assert loaded["AUTH0_CLIENT_ID"] == "atrium-portal"


def test_email_url_selects_smtp(tmp_path: Path) -> None:
    loaded = settings_of(tmp_path, DEBUG="true", EMAIL_URL="smtp+tls://mailer:pw@smtp.internal:587")

    assert loaded["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert loaded["EMAIL_HOST"] == "smtp.internal"


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("task_acks_late", True),
        ("task_reject_on_worker_lost", True),
        ("worker_prefetch_multiplier", 1),
        ("task_serializer", "json"),
        ("accept_content", ["json"]),
    ],
)
def test_celery_is_configured_for_safe_redelivery(option: str, expected: object) -> None:
    assert celery_app.conf[option] == expected


def test_celery_has_time_limits_and_a_beat_schedule() -> None:
    assert 0 < celery_app.conf.task_soft_time_limit < celery_app.conf.task_time_limit
    assert "portal.tasks.worker_heartbeat_record_task" in {
        entry["task"] for entry in celery_app.conf.beat_schedule.values()
    }
