"""A real Celery worker, started as `make run` starts it, runs a task that writes the database."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from kombu import Connection, Queue

from portal.celery import app as celery_app
from portal.models import WorkerHeartbeat
from tests.worker import StartWorker, Worker

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def send_heartbeat_task(broker: Connection, queue: str) -> None:
    celery_app.send_task(
        "portal.tasks.worker_heartbeat_record_task",
        queue=queue,
        connection=broker,
        declare=[Queue(queue)],
    )


def wait_for_heartbeat(worker: Worker, timeout: float = 30) -> WorkerHeartbeat:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        heartbeat = WorkerHeartbeat.objects.filter(hostname=worker.name).first()
        if heartbeat is not None:
            return heartbeat
        time.sleep(0.2)
    pytest.fail(f"the worker did not record its heartbeat within {timeout}s:\n{worker.output()}")


def test_a_worker_on_redis_runs_a_task_that_writes_the_database(start_worker: StartWorker) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to run the worker against Redis (CI does)")
    worker = start_worker(broker_url=redis_url)

    with Connection(redis_url) as broker:
        send_heartbeat_task(broker, worker.queue)

    heartbeat = wait_for_heartbeat(worker)
    assert heartbeat.hostname == worker.name
    assert "succeeded" in worker.output()


def test_a_worker_on_the_filesystem_broker_needs_no_server(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = start_worker(broker_url="filesystem://")
    folder = str(tmp_path / "var" / "broker" / "queue")

    with Connection(
        "filesystem://", transport_options={"data_folder_in": folder, "data_folder_out": folder}
    ) as broker:
        send_heartbeat_task(broker, worker.queue)

    heartbeat = wait_for_heartbeat(worker)
    assert heartbeat.hostname == worker.name
    assert "succeeded" in worker.output()
