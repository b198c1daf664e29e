"""``keliu fleet``: the operator's least-privilege commands, run on the central host (a composition root).

    keliu fleet policies                 row level security on every router table (again after keliu db)
    keliu fleet router add STORE         the store router's PostgreSQL role (and RabbitMQ user: --broker)
    keliu fleet router remove STORE      drop them
    keliu fleet router list
    keliu fleet ca init                  the fleet's CA in var/fleet/
    keliu fleet cert issue NAME          a server or router certificate signed by it
    keliu fleet key export --to CERT     the mall's device key, encrypted to one router
    keliu fleet key import FILE          (on the router) decrypt it into var/keys/device_hmac
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click


@contextlib.contextmanager
def _engine() -> Iterator[Any]:
    from keliu import config, db

    engine = db.make_engine(config.load().database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def _secret_file(path: Path | None) -> Iterator[IO[str] | None]:
    """A new file readable by its owner only, opened before anything is created (so that a password is never
    reset and then lost to a file that could not be written); removed again if the command fails."""
    if path is None:
        yield None
        return
    from keliu.errors import ConfigError

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError("fleet.password_file", f"{path} exists; nothing was changed") from exc
    try:
        with os.fdopen(fd, "w") as fh:
            yield fh
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@click.group("fleet")
def fleet() -> None:
    """Least privilege in a fleet: router roles with row level security, broker users, a CA, the device key."""


@fleet.command("policies")
def policies_cmd() -> None:
    """Enable row level security and the routers' policies on every table (idempotent)."""
    from keliu.fleet import roles

    with _engine() as engine:
        tables = roles.apply_policies(engine)
    click.echo(f"router access rules on {len(tables)} tables")


@fleet.group("router")
def router() -> None:
    """Per-router credentials."""


@router.command("add")
@click.argument("store_id")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="write the password to this new file (mode 0600) instead of printing it")
@click.option("--broker", is_flag=True,
              help="also create the router's RabbitMQ user (rabbitmqctl, on the broker's host)")
@click.option("--vhost", default="/", show_default=True, help="the broker's virtual host")
def router_add(store_id: str, password_file: Path | None, broker: bool, vhost: str) -> None:
    """Create (or reset) STORE's router role: its rows only. The password is shown once (or written to
    --password-file); put it in the router's KELIU_DATABASE_URL."""
    from keliu.fleet import roles

    with _secret_file(password_file) as out, _engine() as engine:
        role, password = roles.add_router(engine, store_id)
        lines = [f"postgresql\t{role}\t{password}"]
        if broker:
            from keliu.fleet import rabbit

            user, bpw = rabbit.add_user(store_id, vhost=vhost)
            lines.append(f"rabbitmq\t{user}\t{bpw}\tqueue {rabbit.queue_name(store_id)}")
        text = "\n".join(lines) + "\n"
        if out is not None:
            out.write(text)
            click.echo(f"{role}: credentials written to {password_file} (0600)")
        else:
            click.echo(text, nl=False)


@router.command("remove")
@click.argument("store_id")
@click.option("--broker", is_flag=True, help="also delete the router's RabbitMQ user")
def router_remove(store_id: str, broker: bool) -> None:
    """Drop STORE's router role (its rows stay)."""
    from keliu.fleet import roles

    with _engine() as engine:
        click.echo(f"dropped {roles.remove_router(engine, store_id)}")
    if broker:
        from keliu.fleet import rabbit

        click.echo(f"deleted broker user {rabbit.delete_user(store_id)}")


@router.command("list")
def router_list() -> None:
    """Role, store and mall of every router."""
    from keliu.fleet import roles

    with _engine() as engine:
        for role, store, mall in roles.list_routers(engine):
            click.echo(f"{role}\t{store}\t{mall}")


def _fleet_dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    from keliu import config

    return Path(config.load().var_dir) / "fleet"


@fleet.group("ca")
def ca_group() -> None:
    """The fleet's certificate authority (var/fleet/ca.key, ca.pem)."""


@ca_group.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="where the CA lives (default: <var_dir>/fleet)")
@click.option("--days", default=3650, show_default=True)
def ca_init(directory: Path | None, days: int) -> None:
    """Create the CA key (0600) and certificate; never replaces one."""
    from datetime import UTC, datetime

    from keliu.fleet import ca

    click.echo(f"CA certificate: {ca.init_ca(_fleet_dir(directory), datetime.now(UTC), days=days)}")


@fleet.group("cert")
def cert_group() -> None:
    """Certificates signed by the fleet's CA."""


@cert_group.command("issue")
@click.argument("name", required=False)
@click.option("--server", is_flag=True, help="the central host's certificate (PostgreSQL, RabbitMQ)")
@click.option("--router", "store_id", help="a router's client certificate, named (common name) after the store's "
                                           "router role, keliu_router_<store>")
@click.option("--dns", multiple=True, help="a DNS name of the server (repeat)")
@click.option("--ip", "ips", multiple=True, help="an IP address of the server (repeat)")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--days", default=825, show_default=True)
def cert_issue(name: str | None, server: bool, store_id: str | None, dns: tuple[str, ...], ips: tuple[str, ...],
               directory: Path | None, days: int) -> None:
    """Issue NAME.key (0600) and NAME.pem in the CA's directory."""
    from datetime import UTC, datetime

    from keliu.fleet import ca, policy

    if store_id is not None:
        name = policy.role_name(store_id)
    if not name:
        raise click.UsageError("give NAME or --router STORE")
    out = ca.issue(_fleet_dir(directory), name, datetime.now(UTC), dns=dns, ips=ips, server=server, days=days)
    click.echo(f"{out.cert}\n{out.key}")


@fleet.group("key")
def key_group() -> None:
    """The mall's device key (device_hmac), sealed to one router's certificate."""


@key_group.command("export")
@click.option("--to", "cert_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the router's certificate (from keliu fleet cert issue --router)")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the sealed key file to write (safe to copy: only that router can open it)")
@click.option("--from", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the mall's key file (default: <var_dir>/keys/device_hmac of this host)")
@click.option("--ca", "ca_dir", type=click.Path(file_okay=False, path_type=Path),
              help="the CA directory the certificate must be signed by (default: <var_dir>/fleet)")
def key_export(cert_path: Path, out: Path, key_file: Path | None, ca_dir: Path | None) -> None:
    """Seal the mall's device key to the router certificate --to."""
    from cryptography import x509

    from keliu import config, keys
    from keliu.errors import ConfigError
    from keliu.fleet import ca, keybox

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    _, ca_cert = ca.load_ca(_fleet_dir(ca_dir))
    keybox.check_issued_by(cert, ca_cert)
    secret = key_file.read_bytes() if key_file else keys.secret_bytes(config.load().var_dir, "device_hmac")
    if len(secret) < 16:
        raise ConfigError("fleet.key", f"{key_file} is shorter than 16 bytes: not a key")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(keybox.seal(secret, "device_hmac", cert))
    click.echo(f"sealed device_hmac for {cert.subject.rfc4514_string()} in {out}")


@key_group.command("import")
@click.argument("box", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--identity", "identity", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="this router's private key (keliu_router_<store>.key)")
@click.option("--cert", "cert_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="this router's certificate: also check the file was sealed for it")
def key_import(box: Path, identity: Path, cert_path: Path | None) -> None:
    """(On the router) open the sealed key into <var_dir>/keys/device_hmac (0600). An existing, different key
    is never replaced (device ids would change): stop the services and remove it first."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from keliu import config
    from keliu.errors import ConfigError
    from keliu.fleet import keybox

    key = serialization.load_pem_private_key(identity.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError("fleet.key", f"{identity} is not an EC private key")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes()) if cert_path else None
    name, secret = keybox.open_box(box.read_bytes(), key, cert)
    if name != "device_hmac":
        raise ConfigError("fleet.key", f"the file holds {name!r}, not device_hmac")
    target = Path(config.load().var_dir) / "keys" / "device_hmac"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o700)
    if target.exists():
        if target.read_bytes() == secret:
            click.echo(f"{target} already holds this key")
            return
        raise ConfigError("fleet.key", f"{target} holds another key; replacing it changes every device id "
                                       "(stop the services and remove it first, before the router's first day)")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
        fh.flush()
        os.fsync(fh.fileno())
    click.echo(f"device_hmac installed in {target}")
