"""Throwaway PostgreSQL clusters and RabbitMQ nodes with a TLS listener, for the fleet's TLS tests.

The shared servers (PostgreSQL on 5432, RabbitMQ on 5672) are never reconfigured: each test starts its own server
from Debian's binaries on free ports, in a temporary directory, with the certificates of a fleet CA made for the
test, and stops and deletes it afterwards. PostgreSQL refuses to run as root, so under root the cluster runs as the
``postgres`` OS user (``runuser``).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.analytics.servers import free_port
from tests.conftest import require

RABBIT_BIN = "/usr/lib/rabbitmq/bin"


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    require(bool(found), "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
    return Path(found[-1]).parent


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


def _give(path: Path, user: str | None, mode: int) -> None:
    os.chmod(path, mode)
    if user:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass(frozen=True)
class PrivatePostgres:
    port: int
    socket_dir: Path

    @property
    def log(self) -> Path:
        """The server's log (pg_ctl -l)."""
        return self.socket_dir / "log"

    def admin_url(self, database: str = "postgres") -> str:
        """The superuser over the cluster's Unix socket (trusted: only this test can reach the directory)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"


@contextlib.contextmanager
def private_postgres(server_cert: Path, server_key: Path, ca_cert: Path) -> Iterator[PrivatePostgres]:
    """A cluster on 127.0.0.1:<free port> with ``ssl = on`` (the given server certificate, client certificates
    checked against ``ca_cert``) whose only TCP rule is ``hostssl all all 127.0.0.1/32 cert``."""
    bindir = _postgres_bin()
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="keliu-pgtls-"))
    data = root / "data"
    try:
        _give(root, user, 0o700)
        init = subprocess.run(_as_user(user, [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                              "--auth=trust", "-E", "UTF8", "--no-sync"]),
                              capture_output=True, text=True, check=False)
        assert init.returncode == 0, init.stderr
        for src, name, mode in ((server_cert, "server.crt", 0o644), (server_key, "server.key", 0o600),
                                (ca_cert, "root.crt", 0o644)):
            shutil.copyfile(src, data / name)
            _give(data / name, user, mode)
        port = free_port()
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                       "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                       "ssl_ca_file = 'root.crt'\nfsync = off\nshared_buffers = 16MB\nmax_connections = 30\n")
        (data / "pg_hba.conf").write_text("local all postgres trust\nhostssl all all 127.0.0.1/32 cert\n",
                                          encoding="utf-8")
        start = subprocess.run(_as_user(user, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                                               "-w", "-t", "60", "start"]),
                               capture_output=True, text=True, check=False)
        log = (root / "log").read_text(encoding="utf-8", errors="replace") if (root / "log").exists() else ""
        assert start.returncode == 0, start.stderr + log
        try:
            yield PrivatePostgres(port, root)
        finally:
            subprocess.run(_as_user(user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                           "stop"]), capture_output=True, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class PrivateRabbit:
    node: str
    tls_port: int
    amqp_port: int
    env: dict[str, str]


def _rabbit_env(root: Path, node: str, tls_port: int, amqp_port: int, dist_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
    env.update(HOME=str(root), RABBITMQ_NODENAME=node, RABBITMQ_NODE_PORT=str(amqp_port),
               RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_DIST_PORT=str(dist_port),
               RABBITMQ_MNESIA_BASE=str(root / "mnesia"), RABBITMQ_LOG_BASE=str(root / "log"),
               RABBITMQ_CONFIG_FILE=str(root / "rabbitmq.conf"),
               RABBITMQ_ADVANCED_CONFIG_FILE=str(root / "advanced.config"),
               RABBITMQ_ENABLED_PLUGINS_FILE=str(root / "enabled_plugins"),                RABBITMQ_PID_FILE=str(root / "pid"), RABBITMQ_LOGS=str(root / "log" / "node.log"),
               RABBITMQ_QUORUM_DIR=str(root / "quorum"), RABBITMQ_STREAM_DIR=str(root / "stream"),
               RABBITMQ_FEATURE_FLAGS_FILE=str(root / "feature_flags"),
               RABBITMQ_PLUGINS_EXPAND_DIR=str(root / "plugins-expand"),
               RABBITMQ_CTL_DIST_PORT_MIN=str(dist_port + 1000), RABBITMQ_CTL_DIST_PORT_MAX=str(dist_port + 1010))
    return env


@contextlib.contextmanager
def private_rabbitmq(server_cert: Path, server_key: Path, ca_cert: Path) -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of its own (its node name, ports, Erlang cookie, data and logs in a temporary directory)
    with a TLS listener that requires a client certificate signed by ``ca_cert`` (``verify_peer`` and
    ``fail_if_no_peer_cert``), and its plain listener on 127.0.0.1 for the test's own checks."""
    # the scripts themselves: Debian's /usr/sbin wrappers switch to the rabbitmq user and its shared home
    server, ctl = f"{RABBIT_BIN}/rabbitmq-server", f"{RABBIT_BIN}/rabbitmqctl"
    require(os.path.exists(server) and os.path.exists(ctl), "rabbitmq-server installed")
    root = Path(tempfile.mkdtemp(prefix="keliu-mqtls-"))
    node = f"keliu-tls-{uuid.uuid4().hex[:8]}@localhost"
    tls_port, amqp_port, dist_port = free_port(), free_port(), free_port()
    for src, name in ((server_cert, "server.pem"), (server_key, "server.key"), (ca_cert, "ca.pem")):
        shutil.copyfile(src, root / name)
    (root / ".erlang.cookie").write_text(uuid.uuid4().hex, encoding="utf-8")
    os.chmod(root / ".erlang.cookie", 0o400)
    (root / "enabled_plugins").write_text("[].\n", encoding="utf-8")
    (root / "advanced.config").write_text("[].\n", encoding="utf-8")
    (root / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp_port}\n"
        f"listeners.ssl.default = 127.0.0.1:{tls_port}\n"
        f"ssl_options.cacertfile = {root / 'ca.pem'}\n"
        f"ssl_options.certfile = {root / 'server.pem'}\n"
        f"ssl_options.keyfile = {root / 'server.key'}\n"
        "ssl_options.verify = verify_peer\n"
        "ssl_options.fail_if_no_peer_cert = true\n", encoding="utf-8")
    env = _rabbit_env(root, node, tls_port, amqp_port, dist_port)
    out = open(root / "stdout", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([server], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            wait = subprocess.run([ctl, "-n", node, "await_startup", "--timeout", "5"], env=env,
                                  capture_output=True, text=True, check=False)
            if wait.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("private RabbitMQ did not start: "
                                     + (root / "stdout").read_text(encoding="utf-8", errors="replace")[-3000:])
            time.sleep(1)
        yield PrivateRabbit(node, tls_port, amqp_port, env)
    finally:
        subprocess.run([ctl, "-n", node, "stop"], env=env, capture_output=True, check=False, timeout=60)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        out.close()
        # epmd (Erlang's port mapper) may have been started by this node; it is shared and harmless: left running
        shutil.rmtree(root, ignore_errors=True)
