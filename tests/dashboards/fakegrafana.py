"""A local HTTP server that records Grafana API calls and answers like Grafana 11 (an edge, for tests).

It keeps folders, datasources and dashboards in memory so that a second provisioning run sees the first's results.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    method: str
    path: str
    body: Any
    auth: str


@dataclass
class State:
    calls: list[Call] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    token: str = "glsa_test"


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _reply(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            call = Call(self.command, self.path, body, self.headers.get("Authorization", ""))
            state.calls.append(call)
            if call.auth != f"Bearer {state.token}":
                return self._reply(401, {"message": "invalid API key"})
            path = self.path.split("?")[0]
            if self.command == "GET" and path.startswith("/api/folders/"):
                uid = path.rsplit("/", 1)[1]
                if uid in state.folders:
                    return self._reply(200, state.folders[uid])
                return self._reply(404, {"message": "folder not found"})
            if self.command == "POST" and path == "/api/folders":
                state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": len(state.folders)}
                return self._reply(200, state.folders[body["uid"]])
            if self.command == "PUT" and path.startswith("/api/folders/"):
                uid = path.rsplit("/", 1)[1]
                state.folders[uid]["title"] = body["title"]
                return self._reply(200, state.folders[uid])
            if self.command == "GET" and path.startswith("/api/datasources/uid/"):
                uid = path.rsplit("/", 1)[1]
                if uid in state.datasources:
                    return self._reply(200, state.datasources[uid])
                return self._reply(404, {"message": "Data source not found"})
            if self.command == "POST" and path == "/api/datasources":
                state.datasources[body["uid"]] = body
                return self._reply(200, {"message": "Datasource added", "datasource": body})
            if self.command == "PUT" and path.startswith("/api/datasources/uid/"):
                state.datasources[path.rsplit("/", 1)[1]] = body
                return self._reply(200, {"message": "Datasource updated"})
            if self.command == "POST" and path == "/api/dashboards/db":
                uid = body["dashboard"]["uid"]
                if body["folderUid"] not in state.folders:
                    return self._reply(400, {"message": "folder not found"})
                state.dashboards[uid] = body
                return self._reply(200, {"status": "success", "uid": uid, "version": 1})
            return self._reply(404, {"message": f"no route {self.command} {path}"})

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return Handler


@contextmanager
def fake_grafana() -> Iterator[tuple[str, State]]:
    state = State()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
