"""keliu marketing: offers, coupons, redemption, attribution, POS sales, campaigns, contact policy and lift.

The O2O loop after "member": the member gets an offer, comes back and buys, and the store sees what worked. Pure
logic (codes, validity, applicability, the contact policy, lift statistics) lives apart from its side effects
(the database, HTTP, SMS and WeChat sends). The portal wires the package in with ``marketing.init_app``; the
package never imports the portal (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

from marketing.web import init_app, login_committed, splash_messages, welcome

__all__ = ["init_app", "login_committed", "splash_messages", "welcome"]
