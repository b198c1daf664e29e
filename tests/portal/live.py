"""A real ``keliu portal`` (gunicorn, the captive front beside it) on free loopback ports, for tests about what goes
over the wire: headers as gunicorn sends them, real cookies. Test support, never imported by product code.

The WeChat login is on, pointed at a FAKE WeChat server in this process; SMS codes are read from the portal's
console output.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

WECHAT_UA = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LivePortal:
    def __init__(self, base: str, log: Path, var: Path, proc: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.log = log
        self.var = var
        self.proc = proc

    def admin_password(self) -> str:
        return (self.var / "keys" / "admin_password").read_text().strip()

    def sms_code(self, masked_tail: str, after: int) -> str:
        """The newest code sent to a number ending in ``masked_tail``, once more than ``after`` were sent."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = re.findall(rf"keliu sms: \S*{re.escape(masked_tail)} code (\d{{6}})", self.log.read_text())
            if len(found) > after:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError("no SMS code in the portal's output")

    def sms_count(self, masked_tail: str) -> int:
        return len(re.findall(rf"keliu sms: \S*{re.escape(masked_tail)} code", self.log.read_text()))


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the portal exited"
        try:
            requests.get(url, timeout=1, allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@contextmanager
def live_portal(tmp: Path) -> Iterator[LivePortal]:
    from keliu.testing.wechat_fake import FakeServer, demo_env

    with FakeServer() as fake:
        port, front_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
        env.update(demo_env(fake.url))
        env.update({"KELIU_DATABASE_URL": f"sqlite:///{tmp / 'k.db'}", "KELIU_VAR_DIR": str(tmp / "var"),
                    "KELIU_PORTAL_CAPTIVE_PORT": str(front_port), "KELIU_PORTAL_WORKERS": "2",
                    "KELIU_PORTAL_PUBLIC_URL": f"http://127.0.0.1:{port}", "PYTHONUNBUFFERED": "1"})
        log = tmp / "portal.log"
        out = log.open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "keliu.cli", "portal", "--host", "127.0.0.1", "--port",
                                 str(port)], cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{port}/", proc)
            yield LivePortal(f"http://127.0.0.1:{port}", log, tmp / "var", proc)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
            out.close()
            sys.stderr.write(log.read_text()[-3000:])
