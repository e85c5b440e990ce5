"""Log lines that say which request and which grant or sync they belong to, as JSON if asked."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

# The request being served and the grant (`grant-<id>`) or sync (`sync-<id>`) being worked on,
# for this thread or task; empty when none is.
request_id: ContextVar[str] = ContextVar("atrium_request_id", default="")
correlation_id: ContextVar[str] = ContextVar("atrium_correlation_id", default="")

# A proxy's X-Request-ID is kept only if it looks like an id: it is written into every log line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def correlate(value: str) -> None:
    """Name the grant or sync this thread is working on, for the log lines that follow (the
    request or the task that runs it clears it when it ends)."""
    correlation_id.set(value)


class ContextFilter(logging.Filter):
    """Put the request id and correlation id on every record, for either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.correlation_id = correlation_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the ids in play."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "correlation_id"):
            value = getattr(record, key, "")
            if value:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestIdMiddleware:
    """Give each request an id, the proxy's X-Request-ID if it sent a sane one, and answer it
    in X-Request-ID, so a person's report and the log lines can be matched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get("X-Request-ID", "")
        rid = offered if _SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        request_token = request_id.set(rid)
        correlation_token = correlation_id.set("")
        try:
            response = self.get_response(request)
        finally:
            correlation_id.reset(correlation_token)
            request_id.reset(request_token)
        response["X-Request-ID"] = rid
        return response


# Celery tasks: each starts with no correlation and leaves none behind (an eager task run
# inside a request gives the request's back).
_task_tokens: dict[str, Token[str]] = {}


def task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_tokens[task_id] = correlation_id.set("")


def task_ended(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        try:
            correlation_id.reset(token)
        except ValueError:  # set in another context (a thread pool): nothing of ours to undo
            correlation_id.set("")
