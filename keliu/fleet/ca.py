"""The fleet's small certificate authority (an edge: key and certificate files in ``var/fleet/``).

EC P-256 keys (what PostgreSQL, RabbitMQ/Erlang and every TLS library accept), SHA-256 signatures. The CA signs
the central host's server certificate (names and addresses in the subject alternative name, for
``sslmode=verify-full``) and one client certificate per router whose common name is the router's PostgreSQL role,
so that ``hostssl … cert`` / ``clientcert=verify-full`` in pg_hba.conf ties the certificate to that role, and
RabbitMQ's ``ssl_cert_login`` to its broker user. A router's certificate also carries its key-agreement key: the
mall's device key is encrypted to it (``keliu.fleet.keybox``). Private keys are written 0600 and never leave the
host that made them, except the router's, which the operator installs on that router.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keliu.errors import ConfigError

CA_KEY, CA_CERT = "ca.key", "ca.pem"


@dataclass(frozen=True)
class Issued:
    key: Path
    cert: Path


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keliu fleet"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def init_ca(directory: Path, now: datetime, *, name: str = "keliu fleet CA", days: int = 3650) -> Path:
    """Create the CA key (0600) and self-signed certificate; refuses to replace an existing CA (every certificate
    it signed would stop verifying)."""
    if (directory / CA_KEY).exists() or (directory / CA_CERT).exists():
        raise ConfigError("fleet.ca", f"a CA exists in {directory}; keep it (or move it away to start over)")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(directory / CA_KEY, _key_pem(key), private=True)
    _write(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return directory / CA_CERT


def load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError("fleet.ca", f"no CA in {directory}: run keliu fleet ca init") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError("fleet.ca", f"{directory / CA_KEY} is not an EC key")
    return key, cert


def issue(directory: Path, name: str, now: datetime, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
          server: bool = False, days: int = 825) -> Issued:
    """A key and a certificate for ``name`` (common name) signed by the CA in ``directory``: a server certificate
    (``server``: TLS server and client use, ``dns``/``ips`` as its names) or a router's client certificate
    (client use and key agreement). Written as ``<name>.key`` (0600) and ``<name>.pem``."""
    if not name or not all(c.isalnum() or c in "-_." for c in name) or not name.isascii():
        raise ConfigError("fleet.cert", f"not a certificate name: {name!r}")
    if server and not (dns or ips):
        raise ConfigError("fleet.cert", "a server certificate needs --dns or --ip (the names clients verify)")
    ca_key, ca_cert = load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    try:
        alt = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    except ValueError as exc:
        raise ConfigError("fleet.cert", f"not an IP address: {exc}") from exc
    builder = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=not server, key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    out = Issued(directory / f"{name}.key", directory / f"{name}.pem")
    if out.key.exists() or out.cert.exists():
        raise ConfigError("fleet.cert", f"{out.cert} exists; remove it to issue again")
    _write(out.key, _key_pem(key), private=True)
    _write(out.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return out
