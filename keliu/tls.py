"""TLS to the central PostgreSQL and to the broker with the fleet CA's certificates (``keliu fleet cert issue``).

Two groups of keys:

- ``[database] sslmode, sslrootcert, sslcert, sslkey``: libpq's own parameters. :func:`database_url` adds them to
  ``database_url``'s query (pure), so every engine keliu makes connects with them; a router sets
  ``sslmode = "verify-full"`` (the server's certificate must be signed by ``sslrootcert`` *and* name the host in
  the URL) and its client certificate, whose common name is its role (``hostssl … cert`` in pg_hba.conf).
- ``[analytics] broker_ssl_ca, broker_ssl_cert, broker_ssl_key``: :func:`broker_use_ssl` turns them into Celery's
  ``broker_use_ssl`` (kombu's ``ssl`` options for py-amqp: the CA, the client certificate and key, the server's
  certificate required and its name checked against the broker URL's host). The analytics app and the sensor's
  Celery sink both use it.

The shape of the settings is checked with the rest of the configuration (pure); :func:`check_files` (an edge,
called by :func:`keliu.config.load` at start-up) reads the files: present, a certificate or key in PEM, a key not
readable by others, the key belonging to the certificate. Every error names its key.
"""
from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keliu.errors import ConfigError

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
#: the modes that check the server's certificate against ``sslrootcert``
VERIFYING = ("verify-ca", "verify-full")
FILE_KEYS = ("sslrootcert", "sslcert", "sslkey")


@dataclass(frozen=True)
class DatabaseConfig:
    """``[database]``: TLS to a PostgreSQL ``database_url`` (libpq's parameters, unset: libpq's defaults)."""

    #: ``verify-full`` for a router (the server's certificate and its host name are checked)
    sslmode: SslMode | None = None
    #: the fleet CA's certificate (ca.pem) the server's certificate must be signed by
    sslrootcert: str | None = None
    #: this host's client certificate (keliu_router_<store>.pem) and its key (0600)
    sslcert: str | None = None
    sslkey: str | None = None

    def validate(self) -> None:
        if (self.sslcert is None) != (self.sslkey is None):
            missing = "sslkey" if self.sslkey is None else "sslcert"
            raise ConfigError(f"database.{missing}", "sslcert and sslkey go together (a certificate and its key)")
        if self.sslmode in VERIFYING and self.sslrootcert is None:
            raise ConfigError("database.sslrootcert", f"sslmode {self.sslmode} needs the CA certificate to check "
                                                      "the server with")
        files = [k for k in FILE_KEYS if getattr(self, k) is not None]
        if files and self.sslmode not in VERIFYING:
            # a client certificate over a connection whose server is not checked could be handed to an impostor
            raise ConfigError("database.sslmode", f"{', '.join(files)} given: set sslmode to verify-full (or "
                                                  f"verify-ca), not {self.sslmode or 'unset (prefer)'}")

    def params(self) -> dict[str, str]:
        return {k: str(v) for k in ("sslmode", *FILE_KEYS) if (v := getattr(self, k)) is not None}


def database_url(url: str, tls: DatabaseConfig) -> str:
    """``url`` with the ``[database]`` TLS parameters in its query (pure). A parameter also in the URL's query with
    another value is an error: one place says how keliu connects."""
    params = tls.params()
    if not params:
        return url
    # imported only where TLS is set: SQLAlchemy takes a tenth of a second of every command's start
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    first = next(iter(params))
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"database.{first}", f"TLS settings are for PostgreSQL; database_url is "
                                               f"{parsed.get_backend_name()}")
    for key, value in params.items():
        given = parsed.query.get(key)
        if given is not None and given != value:
            raise ConfigError(f"database.{key}", f"database_url's query says {key}={given}; set it in one place")
    return parsed.update_query_dict(params).render_as_string(hide_password=False)


def check_broker(broker_url: str | None, ca: str | None, cert: str | None, key: str | None) -> None:
    """The shape of the ``[analytics] broker_ssl_*`` keys (pure; raises ConfigError naming the key)."""
    if (cert is None) != (key is None):
        missing = "broker_ssl_key" if key is None else "broker_ssl_cert"
        raise ConfigError(f"analytics.{missing}", "broker_ssl_cert and broker_ssl_key go together")
    if ca is None and cert is None:
        return
    if ca is None:
        # without a CA the server is not checked, and the client certificate could be handed to an impostor
        raise ConfigError("analytics.broker_ssl_ca", "a client certificate needs the CA to check the broker with")
    scheme = (broker_url or "").partition("://")[0]
    if scheme not in ("amqp", "amqps", "pyamqp"):
        raise ConfigError("analytics.broker_ssl_ca", f"TLS settings are for a RabbitMQ broker (amqp://host:5671); "
                                                     f"broker_url is {scheme or 'unset'}")


def broker_use_ssl(ca: str | None, cert: str | None, key: str | None) -> dict[str, Any] | None:
    """Celery's ``broker_use_ssl`` for py-amqp (pure): the broker's certificate required and signed by ``ca``, its
    name checked against the broker URL's host (``server_hostname`` None: kombu fills in the URL's host), our
    client certificate if given. None without a CA (plain AMQP)."""
    if ca is None:
        return None
    opts: dict[str, Any] = {"ca_certs": ca, "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": None}
    if cert is not None:
        opts.update(certfile=cert, keyfile=key)
    return opts


# ---------------------------------------------------------------------------------------------------------------
# the edge: the files, read once at start-up


def _read(key: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(key, f"no such file: {path}") from exc
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from exc


def _certificate(key: str, path: str) -> Any:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(_read(key, path))[0]
    except ValueError as exc:
        raise ConfigError(key, f"{path} is not a PEM certificate") from exc


def _private_key(key: str, path: str, cert: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    mode = os.stat(path).st_mode if Path(path).exists() else 0
    data = _read(key, path)
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and os.stat(path).st_uid == os.geteuid():
        # libpq refuses such a key at connect time; say so at start-up instead
        raise ConfigError(key, f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(key, f"{path} is not an unencrypted PEM private key") from exc
    pub = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*pub) != cert.public_key().public_bytes(*pub):
        raise ConfigError(key, f"{path} is not the key of the certificate")


def _check_set(prefix: str, ca: str | None, cert: str | None, key: str | None, names: tuple[str, str, str]) -> None:
    if ca is not None:
        _certificate(f"{prefix}.{names[0]}", ca)
    if cert is not None and key is not None:
        _private_key(f"{prefix}.{names[2]}", key, _certificate(f"{prefix}.{names[1]}", cert))


def check_files(database: DatabaseConfig, analytics: Any) -> None:
    """Read every TLS file the configuration names (an edge). Raises ConfigError naming the key."""
    _check_set("database", database.sslrootcert, database.sslcert, database.sslkey, FILE_KEYS)
    _check_set("analytics", getattr(analytics, "broker_ssl_ca", None), getattr(analytics, "broker_ssl_cert", None),
               getattr(analytics, "broker_ssl_key", None), ("broker_ssl_ca", "broker_ssl_cert", "broker_ssl_key"))
