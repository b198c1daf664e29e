"""Least privilege in a fleet (operator commands run on the central host): per-router PostgreSQL roles limited by
row-level security to their store, per-router broker users, a small CA for TLS, and the mall's device key sent to
routers encrypted. ``policy`` and ``broker`` rules are pure; ``roles``, ``rabbit``, ``ca`` and ``keybox`` are edges."""
