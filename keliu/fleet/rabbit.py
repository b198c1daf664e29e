"""Router users in the fleet's RabbitMQ (an edge: runs ``rabbitmqctl`` on the broker's host).

Each router gets a user that may configure, publish to and read only its own queue ``keliu_router_<store>`` and the
exchange of the same name (what Celery declares when the sensor's sink publishes with ``analytics.queue`` set to
it): no other queue, not the default exchange, not ``amq.topic`` nor any other exchange, so a stolen router can
neither inject tasks into the workers' ``analytics``/``celery`` queues, nor publish as another store, nor read
another store's sightings. The central workers consume the routers' queues (``keliu analytics worker -Q …``).
"""
from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass

from keliu.errors import ServiceError
from keliu.fleet import policy


@dataclass(frozen=True)
class BrokerGrant:
    user: str
    queue: str
    configure: str
    write: str
    read: str


def queue_name(store_id: str) -> str:
    return "keliu_router_" + policy.check_id(store_id)


def grant(store_id: str) -> BrokerGrant:
    """The user of a store's router and its permission regexes (pure)."""
    queue = queue_name(store_id)
    only = f"^{re.escape(queue)}$"
    return BrokerGrant(user=queue, queue=queue, configure=only, write=only, read=only)


def _ctl(*args: str, stdin: str | None = None) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    try:
        done = subprocess.run([exe, "-q", *args], input=stdin, capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"rabbitmqctl: {exc}") from exc
    if done.returncode != 0:
        raise ServiceError(f"rabbitmqctl {args[0]}: {(done.stderr or done.stdout).strip()[:300]}")
    return done.stdout


def add_user(store_id: str, *, vhost: str = "/") -> tuple[str, str]:
    """Create (or reset the password of) the router's broker user; returns ``(user, password)``. The password goes
    to rabbitmqctl on its standard input, never on a command line other users can read."""
    g = grant(store_id)
    password = secrets.token_urlsafe(24)
    users = {line.split("\t")[0] for line in _ctl("list_users").splitlines()}
    if g.user in users:
        _ctl("change_password", g.user, stdin=password + "\n")
    else:
        _ctl("add_user", g.user, stdin=password + "\n")
    _ctl("set_user_tags", g.user)
    _ctl("set_permissions", "-p", vhost, g.user, g.configure, g.write, g.read)
    return g.user, password


def delete_user(store_id: str) -> str:
    g = grant(store_id)
    users = {line.split("\t")[0] for line in _ctl("list_users").splitlines()}
    if g.user in users:
        _ctl("delete_user", g.user)
    return g.user
