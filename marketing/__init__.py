"""keliu marketing: offers, coupons, redemption, attribution, POS sales, campaigns, contact policy and lift.

The O2O loop after "member": the member gets an offer, comes back and buys, and the store sees what worked. Pure
logic (codes, validity, applicability, the contact policy, lift statistics) lives apart from its side effects
(the database, HTTP, SMS and WeChat sends). The portal wires the package in with ``marketing.init_app``; the
package never imports the portal (docs/ARCHITECTURE.md).

The four entry points are imported from ``marketing.web`` when first used: the configuration loader imports
``marketing.config``, and with it this package, for every ``keliu`` command, and ``marketing.web`` (Flask and
SQLAlchemy with every marketing table) took 0.3 s of each start, a sixth of ``keliu sensor parse`` on a million
frames.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketing.web import init_app, login_committed, splash_messages, welcome

__all__ = ["init_app", "login_committed", "splash_messages", "welcome"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from marketing import web

        return getattr(web, name)
    raise AttributeError(f"module 'marketing' has no attribute {name!r}")
