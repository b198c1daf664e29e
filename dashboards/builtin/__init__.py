"""The built-in dashboard of the appliance: a Flask blueprint registered by ``portal.app.create_app``.

Pages under ``/dashboard`` (store, mall and operator views, zh-CN and English, ECharts served from
``/dashboard/static/vendor``), JSON and CSV under ``/api/v1/`` (described in :data:`OPENAPI_PATHS`; ``merge_into(document)`` adds them to the
portal's OpenAPI document).
"""
from __future__ import annotations

from dashboards.builtin.openapi import OPENAPI_PATHS, merge_into
from dashboards.builtin.routes import blueprint

__all__ = ["OPENAPI_PATHS", "blueprint", "merge_into"]
