"""The fleet's CA: a router's client certificate and the central host's server certificate complete a mutually
authenticated TLS handshake (Python's ssl over memory buffers, as PostgreSQL's hostssl + clientcert=verify-full
and RabbitMQ's verify_peer do), and a certificate from another CA, or for another name, is refused."""
from __future__ import annotations

import ssl
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from keliu.errors import ConfigError
from keliu.fleet import ca

NOW = datetime.now(UTC)  # certificates are checked by OpenSSL against the real clock


def handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake between two in-memory endpoints; raise what either side raises."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, side in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server checks the client's certificate after its own handshake returned; a round of
            # application data makes its verdict reach both sides
            c.write(b"ping")
            s_in.write(c_out.read())
            assert s.read(4) == b"ping"
            return c, s
    raise AssertionError("handshake did not finish")


def contexts(d: Path, client_name: str, server_name: str, ca_file: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify-full: the CA and the host name
    client.load_verify_locations(ca_file)
    client.load_cert_chain(d / f"{client_name}.pem", d / f"{client_name}.key")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.verify_mode = ssl.CERT_REQUIRED  # clientcert=verify-full
    server.load_verify_locations(ca_file)
    server.load_cert_chain(d / f"{server_name}.pem", d / f"{server_name}.key")
    return client, server


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    d = tmp_path / "fleet"
    ca.init_ca(d, NOW)
    ca.issue(d, "central", NOW, dns=("db.mall.example",), ips=("10.0.0.5",), server=True)
    ca.issue(d, "keliu_router_s1", NOW)
    return d


def test_a_router_and_the_central_host_authenticate_each_other(fleet_dir: Path) -> None:
    client, server = contexts(fleet_dir, "keliu_router_s1", "central", fleet_dir / ca.CA_CERT)
    c, s = handshake(client, server, "db.mall.example")
    peer = s.getpeercert()
    assert peer is not None
    # the common name PostgreSQL's clientcert=verify-full compares with the role
    assert (("commonName", "keliu_router_s1"),) in peer["subject"]
    assert c.getpeercert() is not None


def test_keys_are_private_and_the_ca_is_not_replaced(fleet_dir: Path) -> None:
    for key in (fleet_dir / ca.CA_KEY, fleet_dir / "central.key", fleet_dir / "keliu_router_s1.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((fleet_dir / "central.pem").read_bytes())
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["db.mall.example"]
    with pytest.raises(ConfigError, match="a CA exists"):
        ca.init_ca(fleet_dir, NOW)
    with pytest.raises(ConfigError, match="exists"):
        ca.issue(fleet_dir, "keliu_router_s1", NOW)
    with pytest.raises(ConfigError, match="needs --dns or --ip"):
        ca.issue(fleet_dir, "other", NOW, server=True)


def test_another_ca_or_another_name_is_refused(fleet_dir: Path, tmp_path: Path) -> None:
    rogue = tmp_path / "rogue"
    ca.init_ca(rogue, NOW)
    ca.issue(rogue, "keliu_router_s1", NOW)
    ca.issue(rogue, "central", NOW, dns=("db.mall.example",), server=True)
    # a router certificate from another CA: the central host refuses it
    client, server = contexts(rogue, "keliu_router_s1", "central", fleet_dir / ca.CA_CERT)
    server.load_cert_chain(fleet_dir / "central.pem", fleet_dir / "central.key")
    with pytest.raises(ssl.SSLError):
        handshake(client, server, "db.mall.example")
    # a server from another CA: the router refuses it
    client, server = contexts(fleet_dir, "keliu_router_s1", "central", fleet_dir / ca.CA_CERT)
    server.load_cert_chain(rogue / "central.pem", rogue / "central.key")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(client, server, "db.mall.example")
    # the right server under a name it was not issued for
    client, server = contexts(fleet_dir, "keliu_router_s1", "central", fleet_dir / ca.CA_CERT)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(client, server, "evil.example")
