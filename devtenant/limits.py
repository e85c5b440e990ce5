"""Rate limits and injected faults: the devtenant fails the way Auth0 fails, on request."""

from __future__ import annotations

import fnmatch
import math
import threading
import time
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Auth0's Management API limit: `limit` requests, refilled evenly over `per_seconds`."""

    limit: int = 150
    per_seconds: float = 60.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = float(self.limit)
        self._updated = time.monotonic()

    def configure(self, *, limit: int, per_seconds: float) -> None:
        with self._lock:
            self.limit, self.per_seconds = limit, per_seconds
            self._tokens, self._updated = float(limit), time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        rate = self.limit / self.per_seconds
        self._tokens = min(float(self.limit), self._tokens + (now - self._updated) * rate)
        self._updated = now

    def take(self) -> tuple[bool, dict[str, str]]:
        """Spend one request; whether it was allowed, and the x-ratelimit-* headers."""
        with self._lock:
            self._refill()
            allowed = self._tokens >= 1
            if allowed:
                self._tokens -= 1
            missing = self.limit - self._tokens
            seconds_to_full = missing * self.per_seconds / self.limit
            headers = {
                "x-ratelimit-limit": str(self.limit),
                "x-ratelimit-remaining": str(math.floor(self._tokens)),
                "x-ratelimit-reset": str(math.ceil(time.time() + seconds_to_full)),
            }
            return allowed, headers


@dataclass
class Fault:
    """Answer requests matching `method` and the glob `path` with `status`, after `delay`."""

    method: str
    path: str
    status: int | None = None
    delay: float = 0.0
    times: int | None = None  # None: until cleared
    after: int = 0  # let this many matching requests through first ("the third page fails")

    def matches(self, method: str, path: str) -> bool:
        return (self.method in {"*", method}) and fnmatch.fnmatchcase(path, self.path)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def listing(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
