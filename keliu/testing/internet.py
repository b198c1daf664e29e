"""The bench's stand-ins for the internet and for the portal: small HTTP(S) servers (edge, run as a process).

``python -m keliu.testing.internet --cert C --key K`` serves, on every address of its namespace:

- HTTP 80 and HTTPS 443 (IPv4 and IPv6), answering the OS captive-portal probes as the real hosts do
  (Android ``/generate_204`` → 204, Apple ``/hotspot-detect.html`` → the Success page, Windows
  ``/connecttest.txt`` → ``Microsoft Connect Test``, Firefox ``/success.txt`` → ``success``);
- ``/stream``: one line every 100 ms for a minute (an open connection for the revoke test);
- anything else: ``internet <host><path>``.

``--portal PORT`` instead serves ``portal <host><path>`` on PORT: a stand-in portal for the router's own tests.
"""
from __future__ import annotations

import argparse
import http.server
import socket
import ssl
import threading
import time

APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
WINDOWS_TEXT = "Microsoft Connect Test"
FIREFOX_TEXT = "success\n"
INTERNET_PREFIX = "internet "
PORTAL_PREFIX = "portal "


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    role = "internet"

    def log_message(self, format: str, *args: object) -> None:
        return  # the bench's servers stay quiet; the tests assert on answers

    def _send(self, status: int, body: str, ctype: str = "text/plain; charset=utf-8") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.do_GET()

    def do_GET(self) -> None:
        host = self.headers.get("Host") or ""
        host = host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.split(":")[0]
        path = self.path.split("?")[0]
        if self.role == "portal":
            self._send(200, f"{PORTAL_PREFIX}{host}{self.path}\n")
            return
        if path == "/generate_204":
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/hotspot-detect.html":
            self._send(200, APPLE_SUCCESS, "text/html")
        elif path == "/connecttest.txt":
            self._send(200, WINDOWS_TEXT)
        elif path == "/success.txt":
            self._send(200, FIREFOX_TEXT)
        elif path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for i in range(600):
                    self.wfile.write(f"tick {i}\n".encode())
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return  # the client (or the firewall) cut the connection: that is the point of /stream
        else:
            self._send(200, f"{INTERNET_PREFIX}{host}{self.path}\n")


class _DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _serve(port: int, role: str, tls: ssl.SSLContext | None = None) -> threading.Thread:
    handler = type(f"{role.title()}Handler", (_Handler,), {"role": role})
    server = _DualStackServer(("::", port), handler)
    if tls is not None:
        # handshake lazily, in the handler thread, so a silent client cannot stall accept()
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m keliu.testing.internet")
    parser.add_argument("--cert", help="PEM certificate chain for HTTPS 443")
    parser.add_argument("--key", help="PEM private key for HTTPS 443")
    parser.add_argument("--portal", type=int, metavar="PORT", help="serve a stand-in portal on PORT instead")
    args = parser.parse_args(argv)
    threads = []
    if args.portal:
        threads.append(_serve(args.portal, "portal"))
    else:
        threads.append(_serve(80, "internet"))
        if args.cert and args.key:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(args.cert, args.key)
            threads.append(_serve(443, "internet", tls))
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
