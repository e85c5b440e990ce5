"""Catalog fixtures: descriptor files served over loopback HTTP."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def served(tmp_path: Path, settings: Any) -> Iterator[str]:
    """tmp_path over HTTP on loopback, which URL locations may read as an allowed host."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CATALOG_ALLOWED_HOSTS = [f"127.0.0.1:{server.server_address[1]}"]
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
