"""``keliu portal`` as an operator runs it: gunicorn on the configured address, the captive front beside it, the
RFC 8908 API over HTTPS with a throw-away CA (trustme), children restarted when they die, a clean stop on
SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration
KELIU = [sys.executable, "-m", "keliu.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], **kw: object) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the portal exited"
        try:
            requests.get(url, timeout=1, allow_redirects=False, **kw)  # type: ignore[arg-type]
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def test_help(tmp_path: Path) -> None:
    out = subprocess.run(KELIU + ["portal", "--help"], check=False, capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0 and "--host" in out.stdout and "--port" in out.stdout


def test_serves_http_and_the_captive_api_over_https(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "portal.keliu.lan")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "portal.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "portal.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    port, https_port, front_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env.update({"KELIU_PORTAL_CAPTIVE_PORT": str(front_port), "KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}", "KELIU_VAR_DIR": str(tmp_path / "var"),
                "KELIU_PORTAL_HTTPS_PORT": str(https_port), "KELIU_PORTAL_HTTPS_CERT": str(tmp_path / "portal.pem"),
                "KELIU_PORTAL_HTTPS_KEY": str(tmp_path / "portal.key"), "KELIU_PORTAL_WORKERS": "1"})
    log = (tmp_path / "portal.log").open("wb")
    # -v: gunicorn's start-up lines (quiet without it), which name the worker class checked below
    proc = subprocess.Popen(KELIU + ["-v", "portal", "--port", str(port)], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        r = requests.get(f"http://127.0.0.1:{port}/generate_204", headers={"Host": "connectivitycheck.gstatic.com"},
                         allow_redirects=False, timeout=5)
        assert r.status_code == 302 and r.headers["Location"] == f"http://127.0.0.1:{port}/"
        assert "Server" not in r.headers  # no banner for a scanner to match against
        # the captive front: the same answer without gunicorn, to the splash on --port (its public_url follows)
        front = f"http://127.0.0.1:{front_port}/generate_204"
        wait_http(front, proc)
        r = requests.get(front, headers={"Host": "connectivitycheck.gstatic.com"}, allow_redirects=False, timeout=5)
        assert r.status_code == 302 and r.headers["Location"] == f"http://127.0.0.1:{port}/"
        assert "Server" not in r.headers and r.headers["Cache-Control"] == "no-store"
        # a dead front is restarted by the portal's master within about a second
        children = subprocess.run(["pgrep", "-s", str(proc.pid), "-f", "listener captive"], capture_output=True,
                                  text=True, check=False).stdout.split()
        assert len(children) == 1
        os.kill(int(children[0]), signal.SIGKILL)
        time.sleep(0.3)
        wait_http(front, proc)
        assert requests.get(front, allow_redirects=False, timeout=5).status_code == 302
        api = f"https://127.0.0.1:{https_port}/api/captive"
        wait_http(api, proc, verify=str(tmp_path / "ca.pem"))
        r = requests.get(api, headers={"Accept": "application/captive+json"}, verify=str(tmp_path / "ca.pem"),
                         timeout=5)
        assert r.headers["Content-Type"] == "application/captive+json"
        assert r.headers["Cache-Control"] == "private"
        assert json.loads(r.content)["captive"] is True
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(api, timeout=5)  # the system trust store does not know the throw-away CA
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait(30)
        log.close()
    assert rc == 0, (tmp_path / "portal.log").read_text()
    # gunicorn's master with the portal's own worker class (an event loop that reads requests, threads that run
    # the app), not gthread
    assert "Using worker: portal.serve.worker.LoopWorker" in (tmp_path / "portal.log").read_text()
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        requests.get(api, verify=str(tmp_path / "ca.pem"), timeout=2)
    with pytest.raises(requests.ConnectionError):
        requests.get(front, timeout=2)
    assert subprocess.run(["pgrep", "-s", str(proc.pid)], check=False).returncode == 1  # no child left


def test_a_held_listener_child_builds_nothing_when_its_master_is_gone(tmp_path: Path) -> None:
    """The master starts its listener children before building its own app and releases them when it is ready;
    a child whose master died first (EOF on its stdin, no "go") exits without opening its port."""
    front_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env.update({"KELIU_PORTAL_CAPTIVE_PORT": str(front_port), "KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
                "KELIU_VAR_DIR": str(tmp_path / "var")})
    out = subprocess.run(KELIU + ["portal", "--listener", "captive", "--after-master"], check=False, stdin=subprocess.DEVNULL,
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "k.db").exists()  # no app built: nothing opened the database
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{front_port}/", timeout=2)
