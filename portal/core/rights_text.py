"""The words of a member's rights pages and the readable form of their data export (pure: dicts in, text out).

Kept apart from :mod:`portal.core.i18n` (the splash's catalog): these pages are the member's, in zh-CN (default)
and English. :func:`as_text` renders an export (``portal.store.rights.export``) as plain text for the command line
and the readable view; :func:`sections` gives the same as (title, rows) for the HTML page.
"""
from __future__ import annotations

from typing import Any

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "我的数据", "intro": "这里是本店 Wi-Fi 会员系统保存的关于您的全部信息。您可以下载、更正、撤回同意或注销账户。",
        "download": "下载 JSON 数据", "readable": "查看全部数据", "consents": "我的同意",
        "granted": "已同意", "not_granted": "未同意", "withdraw": "撤回",
        "kind_marketing": "营销信息", "kind_analytics": "到店分析（关联我的设备）", "kind_reauth": "免验证码再次上网",
        "kind_terms": "上网服务条款", "kind_presence_offers": "到店位置触发的优惠（行踪轨迹）",
        "kind_trade_area": "商场其他门店的优惠",
        "phone": "手机号", "change_phone": "更换手机号", "new_phone": "新手机号", "send_code": "获取验证码",
        "code": "验证码", "confirm": "确认", "code_sent": "验证码已发送到新手机号",
        "phone_changed": "手机号已更换", "withdrawn": "已撤回",
        "delete": "注销账户", "delete_note": "注销后，您的会员信息、设备、登录记录、同意记录和到店分析数据将被删除。"
        "法律要求保存的上网日志（手机号、设备地址、时间）将单独保存至法定期限届满后删除。",
        "delete_confirm": "我确认注销账户，此操作不可恢复", "deleted": "您的账户已注销，相关数据已删除。",
        "login_needed": "请先登录会员", "error": "出错了", "back": "返回", "lang_switch": "English",
        "sec_member": "会员信息", "sec_consents": "同意记录", "sec_devices": "设备（加密编号）",
        "sec_logins": "登录记录", "sec_sessions": "上网时段", "sec_sensor_registry": "到店分析设备编号",
        "sec_wechat": "微信", "sec_kept_by_law": "依法保存", "none": "无",
        "err_phone_taken": "该手机号已属于另一位会员", "err_invalid_phone": "请输入正确的手机号",
        "err_code_wrong": "验证码错误或已过期", "err_rate_limited": "请求过于频繁，请稍后再试",
        "err_confirm": "请勾选确认后再注销",
    },
    "en": {
        "title": "My data", "intro": "This is everything the store's Wi-Fi membership holds about you. You can download "
        "it, correct it, withdraw your consents or delete your account.",
        "download": "Download as JSON", "readable": "Read all my data", "consents": "My consents",
        "granted": "given", "not_granted": "not given", "withdraw": "Withdraw",
        "kind_marketing": "Marketing messages", "kind_analytics": "Visit analytics (linked to my phone)",
        "kind_reauth": "Get online again without a code", "kind_terms": "Wi-Fi terms",
        "kind_presence_offers": "Offers triggered by my presence (movement tracks)",
        "kind_trade_area": "Offers from the mall's other stores",
        "phone": "Phone", "change_phone": "Change my phone number", "new_phone": "New phone number",
        "send_code": "Send code", "code": "Code", "confirm": "Confirm", "code_sent": "A code was sent to the new number",
        "phone_changed": "Your phone number was changed", "withdrawn": "Withdrawn",
        "delete": "Delete my account", "delete_note": "Deleting removes your membership, devices, logins, consents "
        "and visit analytics. The access log the law requires (phone, device address, times) is kept apart until its "
        "legal retention ends, then deleted.",
        "delete_confirm": "I want to delete my account; this cannot be undone",
        "deleted": "Your account was deleted, and its data with it.",
        "login_needed": "Please log in as a member first", "error": "Something went wrong", "back": "Back",
        "lang_switch": "中文",
        "sec_member": "Membership", "sec_consents": "Consent history", "sec_devices": "Devices (keyed numbers)",
        "sec_logins": "Logins", "sec_sessions": "Wi-Fi sessions", "sec_sensor_registry": "Visit analytics device ids",
        "sec_wechat": "WeChat", "sec_kept_by_law": "Kept as the law requires", "none": "none",
        "err_phone_taken": "This number belongs to another member", "err_invalid_phone": "Enter a valid mobile number",
        "err_code_wrong": "Wrong or expired code", "err_rate_limited": "Too many requests; try again later",
        "err_confirm": "Tick the confirmation first",
    },
}

#: the export's sections shown, in order (other keys, a component's, are shown after them under their own name)
SECTIONS = ("member", "consents", "devices", "logins", "sessions", "sensor_registry", "wechat", "kept_by_law")
_SKIP = {"format", "exported_at", "consents_now"}


def t(lang: str, key: str) -> str:
    return TEXT.get(lang, TEXT["zh-CN"]).get(key, TEXT["en"].get(key, key))


def _flatten(value: Any) -> list[dict[str, Any]]:
    """A section's value as rows: a list of dicts stays, a dict of lists becomes one row per item, labelled."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v if isinstance(v, dict) else {"value": v} for v in value]
    if isinstance(value, dict):
        if all(isinstance(v, list) for v in value.values()):
            return [{"part": k, **(row if isinstance(row, dict) else {"value": row})}
                    for k, rows in value.items() for row in rows]
        return [value]
    return [{"value": value}]


def sections(export: dict[str, Any], lang: str) -> list[tuple[str, list[dict[str, Any]]]]:
    keys = [k for k in SECTIONS if k in export] + [k for k in export if k not in SECTIONS and k not in _SKIP]
    out = []
    for k in keys:
        title = t(lang, "sec_" + k)
        out.append((k if title == "sec_" + k else title, _flatten(export[k])))
    return out


def as_text(export: dict[str, Any], lang: str = "zh-CN") -> str:
    lines = [f"{t(lang, 'title')} — {export.get('exported_at', '')}"]
    for title, rows in sections(export, lang):
        lines.append("")
        lines.append(f"== {title} ==")
        if not rows:
            lines.append(f"  ({t(lang, 'none')})")
        for row in rows:
            lines.append("  " + "; ".join(f"{k}: {'' if v is None else v}" for k, v in row.items()))
    return "\n".join(lines) + "\n"
