"""The built-in dashboard of the appliance: a Flask blueprint that ``portal.app.create_app`` registers with
:func:`init_app`, handing it the database engine, the configuration and the clock (the dashboards never import the
portal; the admin identity is :mod:`keliu.accounts`).

Pages under ``/dashboard`` (store, mall and operator views, zh-CN and English, ECharts served from
``/dashboard/static/vendor``), JSON and CSV under ``/api/v1/`` (described in :data:`OPENAPI_PATHS`; ``merge_into(document)`` adds them to the
portal's OpenAPI document).
"""
from __future__ import annotations

from dashboards.builtin.openapi import OPENAPI_PATHS, merge_into
from dashboards.builtin.routes import blueprint, init_app

__all__ = ["OPENAPI_PATHS", "blueprint", "init_app", "merge_into"]
