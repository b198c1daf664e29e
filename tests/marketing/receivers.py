"""A webhook receiver for the campaign tests: a real HTTP server on loopback that checks keliu's signature
(marketing.core.webhook.verify) and keeps each ``Idempotency-Key`` once, as the webhook's documentation asks of a
receiver. ``calls`` counts every request, ``delivered`` maps each key to the body first received, ``refused``
counts forged or stale requests (answered 401)."""
from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from marketing.core import webhook


class WebhookReceiver:
    def __init__(self, secrets: dict[int, str] | None = None, delay_s: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.secrets: dict[int, str] = dict(secrets or {})
        self.clock = clock
        self.delay_s = delay_s
        self.calls = 0
        #: requests received and not answered yet
        self.in_flight = 0
        self.refused = 0
        self.delivered: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.in_flight += 1
                status = outer.receive(dict(self.headers.items()), body)
                if outer.delay_s:
                    time.sleep(outer.delay_s)  # the sender may be killed while waiting for this answer
                with outer.lock:
                    outer.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        try:
            doc = json.loads(body)
            secret = self.secrets[int(doc["campaign_id"])]
        except (ValueError, KeyError, TypeError):
            secret = ""
        with self.lock:
            self.calls += 1
            if not secret or not webhook.verify(secret, headers, body, self.clock()):
                self.refused += 1
                return 401
            key = {k.lower(): v for k, v in headers.items()}.get(webhook.IDEMPOTENCY.lower(), "")
            self.delivered.setdefault(key, doc)
        return 200

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
