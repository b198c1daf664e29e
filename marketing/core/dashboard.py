"""The dashboard's marketing section as tables (pure): numbers from :mod:`marketing.report` in, a view out, with
the texts in zh-CN or English. The view has the built-in dashboard's shape (``title``, ``range``,
``compare_note``, ``tables`` of ``columns`` and ``rows`` of ``{"text", "value"}`` cells), so the dashboard's CSV
export (:func:`dashboards.builtin.export.to_csv`) writes it as the page shows it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

LANGS = ("zh-CN", "en")
T: dict[str, dict[str, str]] = {
    "store_title": {"zh-CN": "营销 · {name}", "en": "Marketing · {name}"},
    "mall_title": {"zh-CN": "商圈结算 · {name}", "en": "Trade-area settlement · {name}"},
    "note": {"zh-CN": "核销以未撤销的为准；会员归因只含可关联部分（会员码、券码或手机号）。",
             "en": "Redemptions that were rolled back are not counted; member figures cover only the linkable part "
                   "(member QR, coupon code or phone number)."},
    "offers": {"zh-CN": "优惠活动", "en": "Offers"},
    "offer": {"zh-CN": "活动", "en": "Offer"},
    "kind": {"zh-CN": "类型", "en": "Kind"},
    "issued": {"zh-CN": "发放", "en": "Issued"},
    "redeemed": {"zh-CN": "核销", "en": "Redeemed"},
    "rate": {"zh-CN": "核销率", "en": "Rate"},
    "discount": {"zh-CN": "优惠成本", "en": "Discount cost"},
    "revenue": {"zh-CN": "带动消费", "en": "Attributed revenue"},
    "funnel": {"zh-CN": "券漏斗（会员）", "en": "Coupon funnel (members)"},
    "step": {"zh-CN": "环节", "en": "Step"},
    "members": {"zh-CN": "会员数", "en": "Members"},
    "members_given": {"zh-CN": "领到券", "en": "Got a coupon"},
    "members_redeemed": {"zh-CN": "核销券", "en": "Redeemed a coupon"},
    "members_purchased": {"zh-CN": "核销后消费", "en": "Bought after redeeming"},
    "staff": {"zh-CN": "店员排行", "en": "Staff leaderboard"},
    "staff_name": {"zh-CN": "店员", "en": "Staff"},
    "bound": {"zh-CN": "绑定会员", "en": "Members bound"},
    "counter": {"zh-CN": "经手核销", "en": "Redeemed at counter"},
    "attr_red": {"zh-CN": "归因核销", "en": "Attributed redemptions"},
    "attr_sales": {"zh-CN": "归因销售额", "en": "Attributed sales"},
    "flags": {"zh-CN": "异常标记", "en": "Flags"},
    "pairs": {"zh-CN": "跨店核销（发券店 → 核销店）", "en": "Cross-store redemptions (issued by → redeemed at)"},
    "issued_by": {"zh-CN": "发券店", "en": "Issued by"},
    "redeemed_at": {"zh-CN": "核销店", "en": "Redeemed at"},
    "basket": {"zh-CN": "消费额", "en": "Baskets"},
    "per_store": {"zh-CN": "各店优惠成本", "en": "Discount cost per store"},
    "store": {"zh-CN": "门店", "en": "Store"},
    "own_cost": {"zh-CN": "本店券成本", "en": "Cost of own coupons"},
    "elsewhere": {"zh-CN": "在他店核销", "en": "Redeemed elsewhere"},
    "for_others": {"zh-CN": "代他店核销", "en": "Redeemed here for others"},
    "for_others_cost": {"zh-CN": "代他店优惠", "en": "Discount given for others"},
    "amount_off": {"zh-CN": "满减", "en": "Amount off"},
    "percent_off": {"zh-CN": "折扣", "en": "Percent off"},
    "gift": {"zh-CN": "赠品", "en": "Gift"},
}


def t(lang: str, key: str, **kw: Any) -> str:
    return T[key][lang if lang in LANGS else "zh-CN"].format(**kw)


def _yuan(cents: int) -> dict[str, Any]:
    return {"text": f"¥{cents / 100:,.2f}", "value": cents}


def _n(n: int) -> dict[str, Any]:
    return {"text": str(n), "value": n}


def _rate(r: float | None) -> dict[str, Any]:
    return {"text": "–" if r is None else f"{r * 100:.1f}%", "value": r}


def _s(text: str) -> dict[str, Any]:
    return {"text": text, "value": text}


def store_view(lang: str, store: Mapping[str, str], start: date, end: date, offers: Sequence[Mapping[str, Any]],
               funnel: Mapping[str, int], staff: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    name = store.get("name") or store["id"]
    return {
        "kind": "store", "section": "marketing", "store": {"id": store["id"], "name": name}, "lang": lang,
        "title": t(lang, "store_title", name=name), "range": {"start": start.isoformat(), "end": end.isoformat()},
        "compare_note": t(lang, "note"),
        "tables": [
            {"id": "offers", "title": t(lang, "offers"),
             "columns": [t(lang, k) for k in ("offer", "kind", "issued", "redeemed", "rate", "discount", "revenue")],
             "rows": [[_s(o["title"]), _s(t(lang, o["kind"]) if o["kind"] in T else o["kind"]), _n(o["issued"]),
                       _n(o["redeemed"]), _rate(o["rate"]), _yuan(o["discount_cents"]), _yuan(o["revenue_cents"])]
                      for o in offers]},
            {"id": "funnel", "title": t(lang, "funnel"), "columns": [t(lang, "step"), t(lang, "members")],
             "rows": [[_s(t(lang, k)), _n(funnel[k])]
                      for k in ("members_given", "members_redeemed", "members_purchased")]},
            {"id": "staff", "title": t(lang, "staff"),
             "columns": [t(lang, k) for k in ("staff_name", "bound", "counter", "discount", "attr_red", "attr_sales",
                                              "flags")],
             "rows": [[_s(s["staff"]), _n(s["members_bound"]), _n(s["redemptions"]), _yuan(s["discount_cents"]),
                       _n(s["attributed_redemptions"]), _yuan(s["attributed_sales_cents"] + s["attributed_basket_cents"]),
                       _n(s["flags"])] for s in staff]},
        ],
    }


def mall_view(lang: str, mall: Mapping[str, str], start: date, end: date, settlement: Mapping[str, Any],
              store_names: Mapping[str, str]) -> dict[str, Any]:
    name = mall.get("name") or mall["id"]

    def store(s: str) -> dict[str, Any]:
        return _s(store_names.get(s) or s)

    return {
        "kind": "mall", "section": "marketing", "mall": {"id": mall["id"], "name": name}, "lang": lang,
        "title": t(lang, "mall_title", name=name), "range": {"start": start.isoformat(), "end": end.isoformat()},
        "compare_note": t(lang, "note"),
        "tables": [
            {"id": "pairs", "title": t(lang, "pairs"),
             "columns": [t(lang, k) for k in ("issued_by", "redeemed_at", "redeemed", "discount", "basket")],
             "rows": [[store(p["issued_by"]), store(p["redeemed_at"]), _n(p["redemptions"]),
                       _yuan(p["discount_cents"]), _yuan(p["basket_cents"])] for p in settlement["pairs"]]},
            {"id": "per_store", "title": t(lang, "per_store"),
             "columns": [t(lang, k) for k in ("store", "own_cost", "elsewhere", "for_others", "for_others_cost")],
             "rows": [[store(s["store"]), _yuan(s["issuer_discount_cents"]), _n(s["redeemed_elsewhere"]),
                       _n(s["redeemed_here_for_others"]), _yuan(s["given_for_others_cents"])]
                      for s in settlement["stores"]]},
        ],
    }
