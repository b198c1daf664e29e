"""A shopper's say over the foot-traffic sensor (an edge: SQL through :mod:`sensor.consent`).

Two things reach the sensor's device registry from the portal, never a MAC, only
``sensor.identity.member_device_id(master, mac)``:

- consent (c) at login, "link this phone's visits to my membership": the login's plan
  (:class:`portal.core.login_plan.RegistryChange`, id from :func:`registry_id`) registers the device as a member's
  (stable id); a later login without the tick withdraws it;
- the opt-out page ``/privacy``, open to anyone on the Wi-Fi without logging in: the sensor then drops this
  phone's frames before anything is stored. A member who opts out also withdraws consent (c) (a consent row).
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portal.services import Services
from portal.store import members
from portal.store.models import devices
from sensor import consent
from sensor.identity import mac_bytes, member_device_id

if TYPE_CHECKING:
    from portal.edges.clients import Client


def registry_id(svc: Services, mac: str) -> str:
    return member_device_id(svc.keys.device, mac_bytes(mac))


def _member_of(conn: Connection, device_id: str) -> int | None:
    row = conn.execute(sa.select(devices.c.member_id).where(devices.c.device_id == device_id,
                                                            devices.c.member_id.is_not(None))
                       .order_by(devices.c.last_seen.desc()).limit(1)).first()
    return None if row is None else int(row.member_id)


def set_optout(svc: Services, client: Client, out: bool, lang: str, now: datetime) -> None:
    did = registry_id(svc, client.mac)
    with svc.engine.begin() as conn:
        if out:
            consent.register(conn, did, "optout", now.timestamp())
            member_id = _member_of(conn, client.device_id)
            if member_id is not None:
                members.record_consent(conn, member_id, svc.store_id, "analytics", False, lang, now)
        else:
            consent.unregister(conn, did, "optout")
