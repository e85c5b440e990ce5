"""/metrics for Prometheus: django-prometheus's request metrics and Atrium's own, read at scrape.

Atrium's own are computed from the database, the cache and the broker when Prometheus asks,
not counted in the process that served a page or ran a task: gunicorn runs several workers and
Celery's worker is another process, and each would count only for itself.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from access.models import AccessRequest, RoleSyncRun
from access.selectors import mirror_state
from catalog.models import Location
from portal.celery import app as celery_app

logger = logging.getLogger(__name__)

# The cache key (Redis in production, so every process adds to one count) of the Management
# API's 429 answers; access/auth0.py adds to it.
AUTH0_429_KEY = "atrium:metrics:auth0-429"
# Approval to active, in seconds: a grant normally takes a second or two; minutes mean retries.
ACTIVATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def auth0_rate_limited() -> None:
    """Count one 429 from the Management API, for every process to see."""
    try:
        cache.add(AUTH0_429_KEY, 0, timeout=None)
        cache.incr(AUTH0_429_KEY)
    except Exception:  # a metric never fails the call it counts
        logger.warning("could not count a Management API 429", exc_info=True)


# The gateways' decisions (`/authz/`, access.authz), by outcome: counted in the process and
# added to the cache at most once a second, so an allowed request costs no write.
DECISION_OUTCOMES = ("allowed", "denied", "unauthenticated")
DECISIONS_KEY = "atrium:metrics:authz:{outcome}"
_decisions: Counter[str] = Counter()
_decisions_lock = threading.Lock()
_decisions_flushed = [time.monotonic()]


def decisions_count(outcome: str) -> None:
    """Count one decision of `/authz/` (one of DECISION_OUTCOMES)."""
    with _decisions_lock:
        _decisions[outcome] += 1
        now = time.monotonic()
        if now - _decisions_flushed[0] < 1.0:
            return
        pending = dict(_decisions)
        _decisions.clear()
        _decisions_flushed[0] = now
    decisions_flush(pending)


def decisions_flush(pending: dict[str, int] | None = None) -> None:
    """Add the counts kept in this process to the cache's (all of them when none are given)."""
    if pending is None:
        with _decisions_lock:
            pending = dict(_decisions)
            _decisions.clear()
    for outcome, count in pending.items():
        key = DECISIONS_KEY.format(outcome=outcome)
        try:
            cache.add(key, 0, timeout=None)
            cache.incr(key, count)
        except Exception:  # a metric never fails the decision it counts
            logger.warning("authz: decisions not counted", exc_info=True)


def _requests() -> Iterator[Metric]:

    counts = dict(
        AccessRequest.objects.order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    requests = GaugeMetricFamily(
        "atrium_access_requests", "Access requests by state.", labels=["state"]
    )
    grants = GaugeMetricFamily(
        "atrium_grants", "Grants (requests from approval on) by state.", labels=["state"]
    )
    for state in AccessRequest.State.values:
        requests.add_metric([state], counts.get(state, 0))
        if state in AccessRequest.GRANT_STATES:
            grants.add_metric([state], counts.get(state, 0))
    yield requests
    yield grants

    # Every grant that ever became active, by how long after its approval: a histogram whose
    # counts only grow, as Prometheus expects of one.
    delay = ExpressionWrapper(F("starts_at") - F("decided_at"), output_field=DurationField())
    activated = AccessRequest.objects.filter(
        starts_at__isnull=False, decided_at__isnull=False
    ).annotate(delay=delay)
    aggregates = {
        f"le_{i}": Count("pk", filter=Q(delay__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(ACTIVATION_BUCKETS)
    }
    found = activated.aggregate(total=Count("pk"), delays=Sum("delay"), **aggregates)
    seconds = found["delays"].total_seconds() if found["delays"] is not None else 0.0
    buckets = [(str(b), found[f"le_{i}"]) for i, b in enumerate(ACTIVATION_BUCKETS)]
    yield HistogramMetricFamily(
        "atrium_grant_activation_seconds",
        "Time from a grant's approval to its being active in Auth0.",
        buckets=[*buckets, ("+Inf", found["total"])],
        sum_value=seconds,
    )


def _roles_mirror() -> Iterator[Metric]:

    mirror = mirror_state()
    yield GaugeMetricFamily(
        "atrium_roles_mirror_age_seconds",
        "Seconds since the roles mirror was last synced successfully (NaN: never).",
        value=float("nan") if mirror.age_seconds is None else mirror.age_seconds,
    )
    yield GaugeMetricFamily(
        "atrium_roles_mirror_stale", "1 when the roles mirror is stale.", value=int(mirror.stale)
    )
    last = RoleSyncRun.objects.exclude(outcome=RoleSyncRun.Outcome.RUNNING).first()
    outcome = GaugeMetricFamily(
        "atrium_role_sync_last_outcome",
        "1 for the last finished sync's outcome.",
        labels=["outcome"],
    )
    for value in RoleSyncRun.Outcome.values:
        if value != RoleSyncRun.Outcome.RUNNING:
            outcome.add_metric([value], int(last is not None and last.outcome == value))
    yield outcome
    if last is not None:
        yield GaugeMetricFamily(
            "atrium_role_sync_last_api_calls",
            "Management API calls the last finished sync made.",
            value=last.api_calls,
        )
        yield GaugeMetricFamily(
            "atrium_role_sync_last_duration_seconds",
            "How long the last finished sync took.",
            value=last.duration_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "atrium_role_sync_last_finished_timestamp_seconds",
            "When the last sync finished, as Unix time.",
            value=last.finished_at.timestamp() if last.finished_at else float("nan"),
        )


def _auth0() -> Iterator[Metric]:
    yield CounterMetricFamily(
        "atrium_auth0_rate_limited",
        "429 answers from the Auth0 Management API, every process together.",
        value=int(cache.get(AUTH0_429_KEY) or 0),
    )


def _gateways() -> Iterator[Metric]:
    decisions = CounterMetricFamily(
        "atrium_authz_decisions",
        "The gateways' decisions (/authz/) by outcome, every process together (within a second).",
        labels=["outcome"],
    )
    decisions_flush()  # this process's, up to now
    for outcome in DECISION_OUTCOMES:
        count = cache.get(DECISIONS_KEY.format(outcome=outcome)) or 0
        decisions.add_metric([outcome], int(count))
    yield decisions


def _queue() -> Iterator[Metric]:

    name = settings.CELERY_TASK_DEFAULT_QUEUE
    with celery_app.connection_for_read() as connection:
        # kombu's Redis channel sums LLEN over the queue's priority lists; the filesystem
        # channel counts its files.
        size = connection.default_channel._size(name)  # type: ignore[attr-defined]
    depth = GaugeMetricFamily(
        "atrium_celery_queue_length", "Messages waiting in the Celery queue.", labels=["queue"]
    )
    depth.add_metric([name], size)
    yield depth


def _catalog() -> Iterator[Metric]:

    refreshed = GaugeMetricFamily(
        "atrium_catalog_location_last_refresh_timestamp_seconds",
        "When each catalog location was last refreshed, as Unix time.",
        labels=["location"],
    )
    took = GaugeMetricFamily(
        "atrium_catalog_location_last_refresh_duration_seconds",
        "How long each catalog location's last refresh took.",
        labels=["location"],
    )
    problems = GaugeMetricFamily(
        "atrium_catalog_location_problems",
        "Problems each catalog location's last refresh found.",
        labels=["location"],
    )
    failed = GaugeMetricFamily(
        "atrium_catalog_location_failed",
        "1 when a location's last refresh failed.",
        labels=["location"],
    )
    for location in Location.objects.order_by("target"):
        if location.last_refreshed_at is None:
            continue
        labels = [location.target]
        refreshed.add_metric(labels, location.last_refreshed_at.timestamp())
        if location.last_refresh_seconds is not None:
            took.add_metric(labels, location.last_refresh_seconds)
        problems.add_metric(labels, len(location.last_problems))
        failed.add_metric(labels, int(location.last_outcome == Location.Outcome.FAILED))
    yield from (refreshed, took, problems, failed)


class AtriumCollector:
    """Atrium's own metrics; a part that cannot be read (the broker down) is left out and
    counted in `atrium_metrics_errors`, the rest still answered."""

    parts: dict[str, Callable[[], Iterator[Metric]]] = {
        "requests": _requests,
        "roles_mirror": _roles_mirror,
        "auth0": _auth0,
        "gateways": _gateways,
        "queue": _queue,
        "catalog": _catalog,
    }

    def collect(self) -> Iterable[Metric]:
        errors = GaugeMetricFamily(
            "atrium_metrics_errors", "1 for a part of Atrium's metrics that could not be read.",
            labels=["part"],
        )  # fmt: skip
        for name, part in self.parts.items():
            try:
                found = list(part())
            except Exception:
                logger.warning("metrics: %s could not be read", name, exc_info=True)
                errors.add_metric([name], 1)
            else:
                errors.add_metric([name], 0)
                yield from found
        yield errors


def _process_metrics() -> bytes:
    """django-prometheus's metrics: every gunicorn worker's together when PROMETHEUS_MULTIPROC_DIR
    is set (prometheus-client then keeps them in files there), else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@login_not_required
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape, with `Authorization: Bearer <METRICS_TOKEN>`; 404 unless it is set."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound(
            "metrics are off: METRICS_TOKEN is not set\n", content_type="text/plain"
        )
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        offered.strip().encode(), token.encode()
    ):
        response = HttpResponse(
            "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    own = CollectorRegistry(auto_describe=False)
    own.register(AtriumCollector())
    return HttpResponse(_process_metrics() + generate_latest(own), content_type=CONTENT_TYPE_LATEST)
