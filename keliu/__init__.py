"""keliu (客流): the composition root shared by every component.

This package holds only what all components need: the layered configuration loader, the first-run key store,
the database base and migrations, and the `keliu` command line. Domain logic lives in the top-level packages
`portal`, `sensor`, `analytics`, `router_config` and `dashboards`.
"""
from __future__ import annotations

__version__ = "0.1.0"
