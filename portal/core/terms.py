"""The store's Wi-Fi terms of service (《上网服务条款》) and its logo's checks (pure).

The default terms state what the law asks of a public Wi-Fi and of the people using it: real-name registration by
mobile number before access (Cybersecurity Law art. 24), access logs kept at least six months (art. 21; MPS Order
82 names what they record), no unlawful use, and that the optional choices are separate from access (PIPL). A store
may replace the text in the admin; an empty text means this default.

A logo is accepted by its first bytes, never by its name or declared type: PNG, JPEG or WebP, at most
:data:`LOGO_MAX` bytes. SVG is refused (it can carry script).
"""
from __future__ import annotations

DEFAULT_TERMS = {
    "zh-CN": """《上网服务条款》

1. 实名验证：依据《中华人民共和国网络安全法》第二十四条，使用本店免费 Wi-Fi 前须以手机号码接收短信验证码完成实名验证（或经微信认证）。
2. 日志留存：依据《网络安全法》第二十一条及公安部《互联网安全保护技术措施规定》（公安部令第 82 号），本店记录并留存上网日志（登录和退出时间、手机号、设备地址、IP 地址及地址转换记录）不少于六个月，仅供依法查询。
3. 合法使用：不得利用本网络从事危害国家安全、传播违法信息、侵犯他人合法权益或其他违法活动；违者本店可立即断开其连接，并依法向有关部门报告。
4. 个人信息：手机号仅用于实名验证及您另行同意的用途。成为会员、接收优惠信息和关联到店记录均为可选项，与上网无关，可随时撤回。
5. 服务说明：网络服务按现状提供，本店可能限制单次连接时长或流量。""",
    "en": """Wi-Fi terms of service

1. Real-name verification: under art. 24 of the Cybersecurity Law of the People's Republic of China, you verify your identity with a code sent by SMS to your mobile number (or through WeChat) before using the store's free Wi-Fi.
2. Access logs: under art. 21 of the Cybersecurity Law and Order No. 82 of the Ministry of Public Security, the store records and keeps access logs (log-in and log-out times, mobile number, device address, IP address and address translations) for at least six months, disclosed only as the law requires.
3. Lawful use: do not use this network to endanger national security, spread unlawful content, infringe the rights of others or for any other unlawful activity; the store may disconnect you at once and report it as the law requires.
4. Personal information: your number is used for real-name verification and for what you separately agree to. Membership, offers and linking your visits are optional, independent of access, and can be withdrawn at any time.
5. Service: the network is provided as is; the store may limit the length or volume of a connection.""",
}

#: the largest logo accepted, in bytes
LOGO_MAX = 200 * 1024
MAX_TERMS = 8000


def terms_text(lang: str, custom_zh: str, custom_en: str) -> str:
    """The store's terms in ``lang``: its own text (the English one falls back to the Chinese one), else the
    default in that language."""
    if lang == "en":
        return custom_en.strip() or custom_zh.strip() or DEFAULT_TERMS["en"]
    return custom_zh.strip() or DEFAULT_TERMS["zh-CN"]


def logo_type(data: bytes) -> str | None:
    """The media type of an image by its magic bytes: ``image/png``, ``image/jpeg``, ``image/webp``; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
