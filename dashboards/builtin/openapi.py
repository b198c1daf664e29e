"""The dashboards' part of the portal's OpenAPI 3.1 document (pure data): paths and schemas under ``/api/v1/``.

The portal's document merges them with :func:`merge_into` (paths, ``components.schemas`` and the
``adminSession`` security scheme). A test checks that every API route of the blueprint is described here.
"""
from __future__ import annotations

from typing import Any

_RANGE = [
    {"name": "start", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": "first day, store-local (mall/operator: the configured time zone); default today"},
    {"name": "end", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": "last day, inclusive; default = start; at most 366 days"},
    {"name": "lang", "in": "query", "required": False, "schema": {"type": "string", "enum": ["zh-CN", "en"]},
     "description": "language of labels and formatted texts; default from Accept-Language, else zh-CN"},
]
_ERRORS = {
    "400": {"description": "bad dates", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DashboardError"}}}},
    "401": {"description": "not logged in", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DashboardError"}}}},
    "403": {"description": "the user may not see this store or mall (tenancy)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DashboardError"}}}},
    "404": {"description": "no such store or mall (admins only; others get 403)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DashboardError"}}}},
}


def _op(summary: str, ident: str | None, csv: bool, tag: str = "dashboards") -> dict[str, Any]:
    params = list(_RANGE)
    if ident:
        params.insert(0, {"name": ident, "in": "path", "required": True, "schema": {"type": "string"}})
    content: dict[str, Any] = (
        {"text/csv": {"schema": {"type": "string"},
                      "example": "\ufeffStore,2026-11-17 – 2026-11-17\r\n..."}} if csv else
        {"application/json": {"schema": {"$ref": "#/components/schemas/DashboardView"}}})
    return {"get": {"tags": [tag], "summary": summary, "security": [{"adminSession": []}], "parameters": params,
                    "responses": {"200": {"description": "the view", "content": content}, **_ERRORS}}}


def _live(summary: str, ident: str) -> dict[str, Any]:
    params = [{"name": ident, "in": "path", "required": True, "schema": {"type": "string"}},
              {"name": "window", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 1, "maximum": 60, "default": 10},
               "description": "minutes: devices inside whose last inside sighting is this recent"}, _RANGE[2]]
    return {"get": {"tags": ["dashboards"], "summary": summary, "security": [{"adminSession": []}],
                    "parameters": params,
                    "responses": {"200": {"description": "live occupancy", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/LiveOccupancy"}}}}, **_ERRORS}}}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/dashboard/me": {"get": {
        "tags": ["dashboards"], "summary": "The logged-in admin user and the dashboard views they may open",
        "security": [{"adminSession": []}],
        "responses": {"200": {"description": "user and visible views", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/DashboardMe"}}}}, "401": _ERRORS["401"]}}},
    "/api/v1/stores/{store_id}/dashboard": _op(
        "Store view: the store's figures for a range and the same weekdays one week earlier", "store_id", False),
    "/api/v1/stores/{store_id}/dashboard.csv": _op("Store view as CSV (the tables on screen)", "store_id", True),
    "/api/v1/malls/{mall_id}/dashboard": _op(
        "Mall view: stores side by side, mall totals, top store-to-store transitions", "mall_id", False),
    "/api/v1/malls/{mall_id}/dashboard.csv": _op("Mall view as CSV", "mall_id", True),
    "/api/v1/stores/{store_id}/live": _live(
        "Live occupancy (当前在店人数): devices inside the store now, from the last minutes of sightings", "store_id"),
    "/api/v1/malls/{mall_id}/live": _live(
        "Live occupancy of a mall (each shopper once) and of each of its stores", "mall_id"),
    "/api/v1/operator/dashboard": _op("Operator view: malls side by side (role admin)", None, False),
    "/api/v1/operator/dashboard.csv": _op("Operator view as CSV", None, True),
}

_CELL = {"type": "object", "required": ["text", "value"],
         "properties": {"text": {"type": "string", "description": "formatted as on screen"},
                        "value": {"type": ["number", "string", "null"],
                                  "description": "raw value, for sorting and the CSV; null: no data"},
                        "unit": {"type": "string", "enum": ["count", "s", "ratio"],
                                 "description": "numeric cells only: the CSV writes the value in this unit"}}}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "DashboardError": {"type": "object", "required": ["error", "message"],
                       "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
    "DashboardMe": {"type": "object", "properties": {
        "user": {"type": "object", "properties": {"name": {"type": "string"},
                                                  "role": {"type": "string", "enum": ["admin", "mall", "store"]},
                                                  "mall_id": {"type": ["string", "null"]},
                                                  "store_id": {"type": ["string", "null"]}}},
        "operator": {"type": "boolean"},
        "malls": {"type": "array", "items": {"type": "object"}},
        "stores": {"type": "array", "items": {"type": "object"}}}},
    "DashboardView": {
        "type": "object", "required": ["kind", "title", "range", "previous_range", "kpis", "charts", "tables", "report"],
        "properties": {
            "kind": {"type": "string", "enum": ["store", "mall", "operator"]},
            "title": {"type": "string"},
            "range": {"$ref": "#/components/schemas/DateRange"},
            "previous_range": {"allOf": [{"$ref": "#/components/schemas/DateRange"}, {"type": "object", "properties": {
                "until": {"type": ["string", "null"], "description": "while the range is not over (it holds today):"
                          " the local time (HH:MM) at which the previous range's last day stops, now's"}}}]},
            "compare_note": {"type": "string"},
            "kpis": {"type": "array", "items": {"type": "object", "properties": {
                "key": {"type": "string"}, "kind": {"type": "string", "enum": ["int", "ratio", "duration"]},
                "label": {"type": "string"}, "value": {"type": ["number", "null"]},
                "text": {"type": "string"}, "previous": {"type": ["number", "null"]},
                "previous_text": {"type": "string"}, "change_text": {"type": "string"},
                "unit": {"type": "string", "enum": ["count", "s", "ratio"]},
                "band": {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                         "description": "calibrated [low, high] of the figure (analytics.bands; a sum's band maps "
                                        "the sum); null: no data, or a figure without a band"},
                "basis": {"type": ["string", "null"], "enum": ["linked_devices", None],
                          "description": "what the figure rests on; null: no band given"},
                "band_text": {"type": "string", "description": "the band as shown (\"likely 85–148\"), or \"\""}}}},
            "charts": {"type": "object", "description": "series drawn by the page (same numbers as the tables); "
                                                        "the store's hourly.connected: connected visitors present "
                                                        "per hour (null: no station that day, or not heard yet)"},
            "tables": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "title": {"type": "string"}, "sortable": {"type": "boolean"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "array", "items": _CELL}}}}},
            "status": {"type": "object", "description": "store view: sensor freshness and the empty state",
                       "properties": {"last_report": {"type": ["number", "null"]}, "age_s": {"type": ["number", "null"]},
                                      "empty": {"type": "boolean"}, "never": {"type": "boolean"},
                                      "message": {"type": "string"}}},
            "live": {"$ref": "#/components/schemas/LiveOccupancy"},
            "connected": {
                "type": ["object", "null"],
                "description": "connected shoppers, the AP's own stations (hostapd), exact and never added to the "
                               "estimated figures (docs/METRICS.md \"Error bands and bases\"): the store's; the "
                               "mall's totals (a station connected at two of its stores on one day once; calibration "
                               "null); the operator's (the malls' summed)",
                "properties": {
                    "basis": {"type": "string", "enum": ["connected_stations"]},
                    "visitors": {"type": ["integer", "null"]}, "visits": {"type": ["integer", "null"]},
                    "median_dwell_s": {"type": ["number", "null"]},
                    "dwell_buckets": {"type": "object", "additionalProperties": {"type": ["integer", "null"]}},
                    "staff_excluded": {"type": ["integer", "null"]},
                    "calibration": {
                        "type": ["object", "null"],
                        "description": "connected phones paired with their probe-based devices (basis station_pairs): "
                                       "the share the estimates counted and their dwell against the exact one, "
                                       "reported beside the figures and never applied; null below min_pairs "
                                       "(docs/METRICS.md \"Connected shoppers\")",
                        "properties": {
                            "basis": {"type": "string", "enum": ["station_pairs"]},
                            "min_pairs": {"type": "integer"}, "pairs": {"type": "integer"},
                            "detected": {"type": "integer"}, "detection_rate": {"type": "number"},
                            "detection_band": {"type": "array", "items": {"type": "number"}},
                            "dwell_ratio": {"type": ["number", "null"]},
                            "dwell_ratio_band": {"type": ["array", "null"], "items": {"type": "number"}}}},
                    "key": {"type": "string"}, "label": {"type": "string"}, "value": {"type": ["number", "null"]},
                    "text": {"type": "string"}, "detail": {"type": "string"},
                    "previous": {"type": ["number", "null"]}, "previous_text": {"type": "string"},
                    "change_text": {"type": "string"}}},
            "report": {"type": "object", "description": "the analytics reports behind the view (analytics.report)",
                       "properties": {"current": {"type": "object"}, "previous": {"type": "object"}}}}},
    "LiveOccupancy": {
        "type": "object",
        "required": ["as_of", "window_s", "occupancy", "staying", "nearby", "staff_excluded", "band", "basis"],
        "properties": {
            "kind": {"type": "string", "enum": ["store", "mall"]},
            "store": {"type": "string"}, "mall": {"type": "string"},
            "as_of": {"type": "number", "description": "epoch seconds the figures are for (the server's clock)"},
            "window_s": {"type": "integer"},
            "occupancy": {"type": "integer", "description": "devices inside now (visit rules; staff excluded)"},
            "staying": {"type": "integer", "description": "of those, inside for min_dwell_s already"},
            "nearby": {"type": "integer", "description": "heard at passer-by strength in the window, not inside"},
            "staff_excluded": {"type": "integer"},
            "connected": {"type": "integer",
                          "description": "stations associated to the AP in the window (hostapd): exact, basis "
                                         "connected; not added to occupancy (a connected phone is also probed)"},
            "connected_text": {"type": "string"},
            "band": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                     "description": "calibrated [low, high] (analytics.bands, the visitors' band)"},
            "basis": {"type": "string", "enum": ["linked_devices"]},
            "last_sighting_age_s": {"type": ["number", "null"],
                                    "description": "seconds since the newest sighting; null: none in the look-back"},
            "label": {"type": "string"}, "text": {"type": "string"}, "band_text": {"type": "string"},
            "detail": {"type": "string"}, "heard": {"type": "string"},
            "stores": {"type": "array", "description": "mall: each store's figure",
                       "items": {"type": "object", "properties": {"id": {"type": "string"},
                                                                  "name": {"type": "string"},
                                                                  "value": {"type": "integer"},
                                                                  "text": {"type": "string"}}}}}},
    "DateRange": {"type": "object", "properties": {"start": {"type": "string", "format": "date"},
                                                   "end": {"type": "string", "format": "date"}}},
}

#: the admin session cookie set by ``/admin/login`` (keliu.accounts); the dashboards' API accepts nothing else
OPENAPI_SECURITY_SCHEMES: dict[str, Any] = {
    "adminSession": {"type": "apiKey", "in": "cookie", "name": "keliu",
                     "description": "session cookie of an admin user logged in at /admin/login"},
}


def merge_into(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI document with the dashboards' paths, schemas and security scheme added. Refuses to
    overwrite a path or schema the document already has (two packages must not claim one URL)."""
    import copy

    out = copy.deepcopy(document)
    paths = out.setdefault("paths", {})
    components = out.setdefault("components", {})
    for target, extra in ((paths, OPENAPI_PATHS), (components.setdefault("schemas", {}), OPENAPI_SCHEMAS),
                          (components.setdefault("securitySchemes", {}), OPENAPI_SECURITY_SCHEMES)):
        clash = sorted(set(target) & set(extra))
        if clash:
            raise ValueError(f"OpenAPI document already defines {clash}")
        target.update(copy.deepcopy(extra))
    return out
