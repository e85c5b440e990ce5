"""The portal's Celery app with one fast entry (the heartbeat, or ATRIUM_TEST_BEAT_TASK), for tests
that run real beats against Redis."""

import os

from portal.celery import app

# The entry's name is the test's, so runs of the test never share a lock.
app.conf.beat_schedule = {
    os.environ["ATRIUM_TEST_BEAT_ENTRY"]: {
        "task": os.environ.get(
            "ATRIUM_TEST_BEAT_TASK", "portal.tasks.worker_heartbeat_record_task"
        ),
        "schedule": float(os.environ["ATRIUM_TEST_BEAT_EVERY"]),
        # The expiry is stamped on the message: it tells when the run was sent.
        "options": {"expires": 600},
    }
}

__all__ = ["app"]
