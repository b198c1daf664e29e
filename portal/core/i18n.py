"""Translations of the shopper-facing pages: zh-CN (default) and English (pure).

A small catalog instead of gettext: the splash has a few dozen strings and must stay tiny. The language is chosen
by an explicit switch (``?lang=en``, remembered in a cookie), else by ``Accept-Language``, else zh-CN.
Versions of the consent texts live here too: changing a text means a new version, and consents name it.
"""
from __future__ import annotations

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from portal.core.login_plan import CONSENT_KINDS, MEMBER_PAGE_CONSENTS

LANGS = ("zh-CN", "en")
DEFAULT = "zh-CN"

#: the version of each consent's text (``portal.core.login_plan.CONSENT_KINDS``): bump one whenever its text changes
_VERSIONS = {"terms": "terms-2026-11", "marketing": "marketing-2026-11", "analytics": "analytics-2026-11",
             "reauth": "reauth-2026-11", "presence_offers": "presence-2026-12", "trade_area": "trade-area-2026-12"}
#: in the kinds' order (the login's, then the member page's); a kind without a version fails here, at import
CONSENT_VERSIONS = {kind: _VERSIONS[kind] for kind in (*CONSENT_KINDS, *MEMBER_PAGE_CONSENTS)}

CATALOG: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "免费 Wi-Fi",
        "welcome": "欢迎光临",
        "phone": "手机号",
        "phone_ph": "请输入手机号",
        "send_code": "获取验证码",
        "code": "验证码",
        "code_ph": "6 位数字",
        "code_sent": "验证码已发送，5 分钟内有效。",
        "login": "连接上网",
        "or": "或",
        "privacy_title": "客流统计与隐私",
        "privacy_sensor": "本店的客流传感器会匿名统计附近手机发出的 Wi-Fi 信号（不保存手机地址，设备编号每日更换），用于了解进店人数和停留时长。",
        "privacy_state_anon": "本手机目前被匿名统计。",
        "privacy_state_linked": "您已同意将本手机的到店记录与会员关联。",
        "privacy_state_out": "本手机已退出客流统计。",
        "privacy_optout": "不要统计我的手机",
        "privacy_optin": "恢复匿名统计",
        "privacy_done_optout": "已退出：传感器将在保存任何数据之前丢弃本手机的信号。",
        "privacy_done_optin": "已恢复匿名统计。",
        "privacy_limit": "仅适用于本手机连接本店 Wi-Fi 时所用的地址。",
        "privacy_link": "客流统计与隐私",
        "back": "返回",
        "retry": "重试",
        "wechat_login": "微信连Wi-Fi",
        "terms": "我已阅读并同意《上网服务条款》：依据《网络安全法》第二十四条，公共 Wi-Fi 须以手机号进行实名验证；"
                 "上网日志依法保存。",
        # the same text as "terms", in three parts: the middle one links to the store's terms page
        "terms_pre": "我已阅读并同意",
        "terms_link": "《上网服务条款》",
        "terms_post": "：依据《网络安全法》第二十四条，公共 Wi-Fi 须以手机号进行实名验证；上网日志依法保存。",
        "terms_title": "上网服务条款",
        "marketing": "（可选）成为会员，接收优惠与活动信息。",
        "analytics": "（可选）允许将本手机的到店记录与会员关联，用于改进服务。",
        "reauth": "（可选）记住本设备 {days} 天，期间再次连接无需验证码。",
        "optional_note": "上网不依赖可选项，可随时撤回。",
        "lang_switch": "English",
        "online": "已连接",
        "coupon_title": "送您一张优惠券",
        "coupon_show": "结账时出示券码",
        "coupon_until": "有效期至",
        "coupon_min_spend": "满 {amount} 元可用",
        "time_left": "剩余时间",
        "logout": "断开连接",
        "continue": "继续访问",
        "logged_out": "已断开，欢迎再来。",
        "not_online": "尚未连接",
        "minutes": "分钟",
        "hours": "小时",
        "privacy": "手机号仅用于实名验证和您同意的用途。",
        "err_invalid_phone": "请输入有效的手机号码。",
        "err_consent_required": "请先同意上网服务条款。",
        "err_code_not_requested": "请先获取验证码。",
        "err_code_used": "验证码已使用，请重新获取。",
        "err_code_expired": "验证码已过期，请重新获取。",
        "err_code_locked": "错误次数过多，请重新获取验证码。",
        "err_code_wrong": "验证码不正确。",
        "err_code_rejected": "验证码不正确。",
        "err_resend_cooldown": "请稍后再获取验证码。",
        "err_daily_cap": "今日获取验证码次数已达上限。",
        "err_rate_limited": "请求过于频繁，请稍后再试。",
        "err_sms_failed": "短信发送失败，请稍后再试。",
        "err_unavailable": "服务暂时不可用，请几秒后再试。",
        "err_unknown_client": "无法识别您的设备，请确认已连接本店 Wi-Fi。",
        "err_bad_request": "请求无效。",
        "err_too_large": "上传的内容过大。",
    },
    "en": {
        "title": "Free Wi-Fi",
        "welcome": "Welcome",
        "phone": "Mobile number",
        "phone_ph": "Your mobile number",
        "send_code": "Get code",
        "code": "Code",
        "code_ph": "6 digits",
        "code_sent": "Code sent; valid for 5 minutes.",
        "login": "Connect",
        "or": "or",
        "privacy_title": "Foot traffic and privacy",
        "privacy_sensor": "The store's foot-traffic sensor counts the Wi-Fi signals of nearby phones anonymously (no phone address is stored; device numbers change every day) to learn how many people come in and how long they stay.",
        "privacy_state_anon": "This phone is counted anonymously.",
        "privacy_state_linked": "You agreed to link this phone's visits to your membership.",
        "privacy_state_out": "This phone is not counted.",
        "privacy_optout": "Don't count my phone",
        "privacy_optin": "Count me anonymously again",
        "privacy_done_optout": "Done: the sensor drops this phone's signals before anything is stored.",
        "privacy_done_optin": "You are counted anonymously again.",
        "privacy_limit": "This covers the address this phone uses on the store's Wi-Fi.",
        "privacy_link": "Foot traffic and privacy",
        "back": "Back",
        "retry": "Try again",
        "wechat_login": "Connect with WeChat",
        "terms": "I accept the Wi-Fi terms of service: under art. 24 of the Cybersecurity Law public Wi-Fi requires "
                 "real-name verification by mobile number; access logs are kept as the law requires.",
        "terms_pre": "I accept the ",
        "terms_link": "Wi-Fi terms of service",
        "terms_post": ": under art. 24 of the Cybersecurity Law public Wi-Fi requires real-name verification by mobile "
                      "number; access logs are kept as the law requires.",
        "terms_title": "Wi-Fi terms of service",
        "marketing": "(Optional) Become a member and receive offers and event news.",
        "analytics": "(Optional) Link this phone's store visits to my membership to improve the service.",
        "reauth": "(Optional) Remember this device for {days} days: reconnect without a code.",
        "optional_note": "Getting online never depends on the optional choices; you can withdraw them any time.",
        "lang_switch": "中文",
        "online": "Connected",
        "coupon_title": "A coupon for you",
        "coupon_show": "Show this code at the counter",
        "coupon_until": "Valid until",
        "coupon_min_spend": "On a purchase of ¥{amount} or more",
        "time_left": "Time left",
        "logout": "Disconnect",
        "continue": "Continue",
        "logged_out": "Disconnected. See you again.",
        "not_online": "Not connected",
        "minutes": "min",
        "hours": "h",
        "privacy": "Your number is used only for real-name verification and what you agree to.",
        "err_invalid_phone": "Enter a valid mobile number.",
        "err_consent_required": "Please accept the Wi-Fi terms first.",
        "err_code_not_requested": "Request a code first.",
        "err_code_used": "This code was already used; request a new one.",
        "err_code_expired": "The code has expired; request a new one.",
        "err_code_locked": "Too many wrong attempts; request a new code.",
        "err_code_wrong": "Wrong code.",
        "err_code_rejected": "Wrong code.",
        "err_resend_cooldown": "Please wait before requesting another code.",
        "err_daily_cap": "Too many codes for this number today.",
        "err_rate_limited": "Too many requests; try again later.",
        "err_sms_failed": "The SMS could not be sent; try again later.",
        "err_unavailable": "The service is briefly unavailable; try again in a few seconds.",
        "err_unknown_client": "Your device is not recognised; are you on the store's Wi-Fi?",
        "err_bad_request": "Invalid request.",
        "err_too_large": "The upload is too large.",
    },
}


def pick(switch: str | None, cookie: str | None, accept_language: str | None) -> str:
    for explicit in (switch, cookie):
        if explicit is not None and explicit in LANGS:
            return explicit
    if accept_language:
        accept = parse_accept_header(accept_language, LanguageAccept)
        best = accept.best_match(["zh-CN", "zh", "en"])
        if best is not None:
            return "en" if best.startswith("en") else "zh-CN"
    return DEFAULT


def gettext(lang: str, key: str, **kw: object) -> str:
    text = CATALOG.get(lang, CATALOG[DEFAULT]).get(key) or CATALOG[DEFAULT].get(key) or key
    return text.format(**kw) if kw else text
