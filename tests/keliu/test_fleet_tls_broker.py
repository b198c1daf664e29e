"""TLS to the broker with the fleet CA's certificates, against a real RabbitMQ: a throwaway node of its own (the
shared node on 5672 is never touched) whose TLS listener requires a client certificate signed by the fleet CA
(``verify_peer``, ``fail_if_no_peer_cert``).

The sensor (``keliu sensor replay``) publishes its sightings through the TLS listener with the router's
certificate from ``[analytics] broker_ssl_*``, and a ``keliu analytics worker`` with the same settings stores
them; a client without a certificate, with one from another CA, or expecting another server name is refused."""
from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kombu.pools
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from kombu import Connection

from keliu import config, db, tls
from keliu.fleet.cli import fleet as fleet_cli
from keliu.testing.simulate import Scenario, simulate, write_pcap
from sensor import store as sensor_store
from sensor.errors import DeliveryError
from sensor.records import Sighting
from sensor.sinks import CelerySink
from tests.analytics.servers import celery_worker
from tests.conftest import ROOT
from tests.keliu.private_services import RABBIT_BIN, PrivateRabbit, private_rabbitmq

pytestmark = pytest.mark.integration
ROUTER = "keliu_router_s1"


def cli(*args: str) -> None:
    result = CliRunner().invoke(fleet_cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


@dataclass(frozen=True)
class TlsBroker:
    mq: PrivateRabbit
    ca_dir: Path
    other_ca_dir: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@localhost:{self.mq.tls_port}//"

    def env(self, cert_dir: Path | None = None) -> dict[str, str]:
        d = cert_dir or self.ca_dir
        return {"KELIU_ANALYTICS_BROKER_URL": self.url, "KELIU_ANALYTICS_BROKER_SSL_CA": str(self.ca_dir / "ca.pem"),
                "KELIU_ANALYTICS_BROKER_SSL_CERT": str(d / f"{ROUTER}.pem"),
                "KELIU_ANALYTICS_BROKER_SSL_KEY": str(d / f"{ROUTER}.key")}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    base = tmp_path_factory.mktemp("fleet")
    ca_dir, other = base / "ca", base / "other"
    cli("ca", "init", "--dir", str(ca_dir))
    # kombu connects to "localhost" as 127.0.0.1: the name it checks the certificate against
    cli("cert", "issue", "central", "--server", "--dns", "localhost", "--ip", "127.0.0.1", "--dir", str(ca_dir))
    cli("cert", "issue", "--router", "s1", "--dir", str(ca_dir))
    cli("ca", "init", "--dir", str(other))
    cli("cert", "issue", "--router", "s1", "--dir", str(other))
    with private_rabbitmq(ca_dir / "central.pem", ca_dir / "central.key", ca_dir / "ca.pem") as mq:
        yield TlsBroker(mq, ca_dir, other)


@pytest.fixture(autouse=True)
def fresh_producer_pools() -> Iterator[None]:
    # kombu keeps one process-wide producer pool per broker, keyed by host, user, password, vhost, port and
    # transport options but not by the TLS options: a sink made with other certificates for the same URL would be
    # handed the previous test's connection. A sensor has one sink per process; the tests make several.
    kombu.pools.reset()
    yield
    kombu.pools.reset()


def tsighting() -> Sighting:
    return Sighting(sid="tls-1", ts=1.7e9, store="demo-store", sensor="s1", device="d" * 32, rssi=-50, freq=2412,
                    seq=1, randomized=False)


def test_the_sensor_publishes_over_tls_and_a_worker_stores_what_it_sent(
        broker: TlsBroker, tmp_path: Path, migrated_postgres_url: str) -> None:
    postgres_url = migrated_postgres_url
    frames, _ = simulate(Scenario(passersby_per_day=60, visitors_per_day=12), 4)
    write_pcap(tmp_path / "day.pcap", frames)
    (tmp_path / "keliu.toml").write_text("")
    env = {**os.environ, **broker.env(), "KELIU_DATABASE_URL": postgres_url, "KELIU_VAR_DIR": str(tmp_path / "var"),
           "KELIU_CONFIG": str(tmp_path / "keliu.toml")}
    cfg = config.load(env=env)
    assert cfg.analytics.broker_use_ssl() == {
        "ca_certs": str(broker.ca_dir / "ca.pem"), "certfile": str(broker.ca_dir / f"{ROUTER}.pem"),
        "keyfile": str(broker.ca_dir / f"{ROUTER}.key"), "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": None}
    engine = db.make_engine(postgres_url)
    db.upgrade(engine)
    try:
        with celery_worker(env, "tls@test", tmp_path / "worker.log"):
            subprocess.run([sys.executable, "-m", "keliu.cli", "sensor", "replay", str(tmp_path / "day.pcap"),
                            "--store", "demo-store", "--max"], env=env, check=True, capture_output=True, cwd=ROOT,
                           timeout=120)
            deadline, n = time.monotonic() + 60, 0
            while time.monotonic() < deadline and n < len(frames):
                with engine.connect() as conn:
                    n = conn.execute(sa.select(sa.func.count()).select_from(sensor_store.sightings)).scalar() or 0
                time.sleep(0.3)
            # the worker's connections are TLS, authenticated by the router's certificate
            listed = subprocess.run([f"{RABBIT_BIN}/rabbitmqctl", "-n", broker.mq.node, "list_connections", "ssl",
                                     "peer_cert_subject", "--quiet", "--no-table-headers"], env=broker.mq.env, capture_output=True,
                                    text=True, check=True)
        assert n == len(frames)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert "analytics.ingest_batch" in log  # through the broker, not SQL
        assert f"amqp://guest:**@127.0.0.1:{broker.mq.tls_port}//" in log  # the worker is on the TLS listener
        rows = [line.split("\t") for line in listed.stdout.splitlines() if line.strip()]
        assert rows and all(r[0] == "true" and f"CN={ROUTER}" in r[1] for r in rows), listed.stdout
    finally:
        engine.dispose()


def _sink(broker: TlsBroker, **changes: object) -> CelerySink:
    opts = tls.broker_use_ssl(str(broker.ca_dir / "ca.pem"), str(broker.ca_dir / f"{ROUTER}.pem"),
                              str(broker.ca_dir / f"{ROUTER}.key"))
    assert opts is not None
    opts.update(changes)
    return CelerySink(broker.url, f"tls-{os.getpid()}", ssl={k: v for k, v in opts.items() if v != "drop"})


def test_the_sink_with_the_router_certificate_is_let_in(broker: TlsBroker) -> None:
    _sink(broker).deliver([tsighting()])
    with Connection(broker.url, ssl=tls.broker_use_ssl(str(broker.ca_dir / "ca.pem"),
                                                       str(broker.ca_dir / f"{ROUTER}.pem"),
                                                       str(broker.ca_dir / f"{ROUTER}.key"))) as conn:
        message = conn.SimpleQueue(f"tls-{os.getpid()}").get(timeout=10)
        assert message.payload[0][0][0]["sid"] == "tls-1"
        message.ack()


#: what the client sees of the server's refusal: its TLS alert, or, when the server's close wins the race with the
#: alert's reading (TLS 1.3 checks the client's certificate after the client's handshake returned), an EOF
REFUSED = "alert {}|EOF occurred in violation of protocol|Connection reset"


def server_says(broker: TlsBroker, since: int) -> str:
    """What the node logged after byte ``since`` of its log (its TLS alerts name the reason)."""
    time.sleep(0.5)
    with open(broker.mq.env["RABBITMQ_LOGS"], "rb") as fh:
        fh.seek(since)
        return fh.read().decode(errors="replace")


def log_size(broker: TlsBroker) -> int:
    return os.path.getsize(broker.mq.env["RABBITMQ_LOGS"])


def test_a_client_without_a_certificate_is_refused(broker: TlsBroker) -> None:
    since = log_size(broker)
    with pytest.raises(DeliveryError, match=REFUSED.format("certificate required")):
        _sink(broker, certfile="drop", keyfile="drop").deliver([tsighting()])
    assert "SERVER ALERT: Fatal - Certificate required" in server_says(broker, since)


def test_a_client_certificate_of_another_ca_is_refused(broker: TlsBroker) -> None:
    since = log_size(broker)
    with pytest.raises(DeliveryError, match=REFUSED.format("unknown ca")):
        _sink(broker, certfile=str(broker.other_ca_dir / f"{ROUTER}.pem"),
              keyfile=str(broker.other_ca_dir / f"{ROUTER}.key")).deliver([tsighting()])
    assert "SERVER ALERT: Fatal - Unknown CA" in server_says(broker, since)


def test_the_broker_name_is_checked_against_its_certificate(broker: TlsBroker) -> None:
    with pytest.raises(DeliveryError, match="Hostname mismatch"):
        _sink(broker, server_hostname="mq.other.example").deliver([tsighting()])
    # and a server certificate from another CA (an impostor broker) fails the same way: the CA is checked
    with pytest.raises(DeliveryError, match="(?i)certificate verify failed"):
        _sink(broker, ca_certs=str(broker.other_ca_dir / "ca.pem")).deliver([tsighting()])
