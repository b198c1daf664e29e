"""Typed configuration of the portal: ``[portal]``, ``[sms]`` and ``[wechat]`` (pure dataclasses)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from keliu.config import ipv4, positive
from keliu.config import port as valid_port  # the name `port` is a field of PortalConfig

#: where Debian's and Ubuntu's dnsmasq keep their leases by default
DNSMASQ_LEASES = "/var/lib/misc/dnsmasq.leases"


def port_or_off(value: int) -> int:
    return value if value == 0 else valid_port(value)


@dataclass(frozen=True)
class PortalConfig:
    host: str = field(default="127.0.0.1", metadata={"check": ipv4})
    port: int = field(default=8080, metadata={"check": valid_port})
    #: the captive front (portal.serve.front): the port the router DNATs a captive phone's HTTP to, answered by an
    #: event loop beside gunicorn; 0: none, the router DNATs to ``port`` and gunicorn answers the probes too
    captive_port: int = field(default=8081, metadata={"check": port_or_off})
    #: the store this portal instance serves (a router sits in one store)
    store: str = "demo-store"
    #: false on a fleet's router that connects with its own role (``keliu fleet``): the central host upgrades the
    #: schema, syncs the tenants and owns the admin accounts, so start-up only reconciles the Gate
    manage_schema: bool = True
    #: HTTPS listener for the RFC 8908 API; cert and key paths (PEM). Unset: no HTTPS listener.
    https_port: int = field(default=8443, metadata={"check": valid_port})
    https_cert: str | None = None
    https_key: str | None = None
    #: the URL a phone uses to reach the portal (the router's LAN address or local DNS name);
    #: empty (the default): ``http://<host>:<port>``
    public_url: str = ""
    #: RFC 8908 API URI handed out in DHCP option 114 (must be https in production)
    api_url: str = "https://127.0.0.1:8443/api/captive"
    session_minutes: int = field(default=24 * 60, metadata={"check": positive})
    idle_minutes: int = field(default=60, metadata={"check": positive})
    reauth_days: int = field(default=7, metadata={"check": positive})
    #: production WSGI server workers
    workers: int = field(default=2, metadata={"check": positive})
    #: threads per worker: requests one worker runs at once. Few, because they share one GIL: at 300 logins/s on
    #: 2 cores, 4 threads gave p99 47-139 ms and 8 gave 156-365 ms (bench/portal.py); probes do not need them
    #: (the captive front answers those)
    threads: int = field(default=4, metadata={"check": positive})
    #: Limits on what a client may hold, on both listeners (portal.serve.http11): seconds a connection may wait for a
    #: request's first byte (the captive front keeps its own, longer, for phones' kept-alive probe connections)
    keepalive_s: float = field(default=5.0, metadata={"check": positive})
    #: seconds from a request's first byte to the end of its head, and from there to the end of its body (a
    #: slowloris trickling a byte at a time is answered 408 and cut)
    head_timeout_s: float = field(default=10.0, metadata={"check": positive})
    body_timeout_s: float = field(default=30.0, metadata={"check": positive})
    #: request body bytes (413 beyond)
    max_body: int = field(default=1024 * 1024, metadata={"check": positive})
    #: connections one client address may hold at once per process (a phone's browser opens about 6)
    client_connections: int = field(default=64, metadata={"check": positive})
    #: The captive front (portal.serve.front): seconds an address found captive is answered from memory (probes),
    #: threads for the lookups that need the database, lookups waiting beyond which phones are answered captive
    #: without one (load shedding, fail closed), seconds a phone's connection may wait for its next request, and
    #: connections in all
    captive_memo_s: float = field(default=1.0, metadata={"check": positive})
    captive_threads: int = field(default=8, metadata={"check": positive})
    captive_max_pending: int = field(default=256, metadata={"check": positive})
    captive_keepalive_s: float = field(default=15.0, metadata={"check": positive})
    captive_max_connections: int = field(default=10000, metadata={"check": positive})
    #: which Gate executes AllowClient/RevokeClient: "nft" (the router), "memory" (demo, tests)
    gate: Literal["nft", "memory"] = "memory"
    admin_user: str = "admin"
    #: unset: generated into var/keys/admin_password on first run
    admin_password: str | None = None
    #: failed admin logins per address per 15 minutes (then it waits); this many failures for one user name from
    #: any addresses make every failing address back off from its first failure (portal.store.limits.login_wait_s)
    admin_login_per_15min: int = field(default=10, metadata={"check": positive})
    #: session cookies carry ``Secure``: "auto" = when public_url is https
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    #: seconds between sweeps of expired and idle sessions (run by the server's master process)
    sweep_s: int = field(default=30, metadata={"check": positive})
    #: venue information page (RFC 8908 ``venue-info-url``); unset: the splash page
    venue_info_url: str | None = None
    #: dnsmasq's DHCP lease file (its ``dhcp-leasefile``), read to bind a login to its lease (portal.core.binding).
    #: Empty: with the nft Gate, dnsmasq's default ``/var/lib/misc/dnsmasq.leases``; with the memory Gate (demo,
    #: no DHCP), none: only the IP binding is checked. Missing or unreadable: heal and re-authorization refused.
    dhcp_leases: str = ""

    def validate(self) -> None:
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.port}")
        for key in ("public_url", "api_url"):
            url = getattr(self, key)
            if not url.startswith(("http://", "https://")) or len(url.split("/", 3)[2]) == 0:
                raise ValueError(f"{key}: not an absolute http(s) URL: {url!r}")
        if self.public_url.endswith("/"):
            raise ValueError(f"public_url: drop the trailing slash: {self.public_url!r}")
        if self.captive_port in (self.port, self.https_port):
            raise ValueError(f"captive_port: {self.captive_port} is already the portal's port or https_port")
        if not self.dhcp_leases and self.gate == "nft":
            object.__setattr__(self, "dhcp_leases", DNSMASQ_LEASES)
        if bool(self.https_cert) != bool(self.https_key):
            raise ValueError("https_cert, https_key: set both or neither")


@dataclass(frozen=True)
class SmsConfig:
    backend: Literal["console", "tencent", "aliyun"] = "console"
    code_ttl_s: int = field(default=300, metadata={"check": positive})
    max_tries: int = field(default=5, metadata={"check": positive})
    #: seconds before the same device may ask again for a code to the same number (another device is not held up)
    resend_s: int = field(default=60, metadata={"check": positive})
    #: codes one device may ask for one number per day (24 h); another device's requests do not count here
    daily_cap: int = field(default=10, metadata={"check": positive})
    #: codes per number per day from all devices together. Only abuse should reach it: it must stay above what two
    #: devices may ask (2 x daily_cap), since a third party reaching it blocks the number's owner for the day;
    #: each device is further held by ``per_client_per_hour`` and each address by ``per_ip_per_hour``
    phone_daily_cap: int = field(default=50, metadata={"check": positive})
    #: code requests per source address per hour (any number)
    per_ip_per_hour: int = field(default=30, metadata={"check": positive})
    #: code requests per client device per hour (any number)
    per_client_per_hour: int = field(default=6, metadata={"check": positive})
    #: code verifications per IP per hour (against guessing across many phones)
    verify_per_ip_per_hour: int = field(default=60, metadata={"check": positive})
    #: "http" only for the local test server that checks the SDK's signed request
    tencent_scheme: Literal["https", "http"] = "https"
    tencent_endpoint: str = "sms.tencentcloudapi.com"
    tencent_region: str = "ap-guangzhou"
    tencent_secret_id: str | None = None
    tencent_secret_key: str | None = None
    tencent_sdk_app_id: str | None = None
    tencent_sign_name: str | None = None
    tencent_template_id: str | None = None
    #: Aliyun SMS (dysmsapi SendSms): "http" only for the local test server that checks the signature
    aliyun_scheme: Literal["https", "http"] = "https"
    aliyun_endpoint: str = "dysmsapi.aliyuncs.com"
    aliyun_region: str = "cn-hangzhou"
    aliyun_access_key_id: str | None = None
    aliyun_access_key_secret: str | None = None
    #: the approved signature (签名), without 【】
    aliyun_sign_name: str | None = None
    #: the approved verification-code template (SMS_…), whose variable is ${code}
    aliyun_template_code: str | None = None

    def validate(self) -> None:
        if self.phone_daily_cap <= 2 * self.daily_cap:
            raise ValueError(f"phone_daily_cap: {self.phone_daily_cap} must be more than twice daily_cap "
                             f"({self.daily_cap}): two devices asking for a number must not block its owner")
        if self.backend == "tencent":
            for key in ("tencent_secret_id", "tencent_secret_key", "tencent_sdk_app_id", "tencent_template_id"):
                if not getattr(self, key):
                    raise ValueError(f"{key}: required when backend = 'tencent'")
        if self.backend == "aliyun":
            for key in ("aliyun_access_key_id", "aliyun_access_key_secret", "aliyun_sign_name",
                        "aliyun_template_code"):
                if not getattr(self, key):
                    raise ValueError(f"{key}: required when backend = 'aliyun'")


@dataclass(frozen=True)
class WechatConfig:
    enabled: bool = False
    #: 微信连Wi-Fi (portal-type device)
    app_id: str | None = None
    shop_id: str | None = None
    secret_key: str | None = None
    ssid: str = ""
    bssid: str = ""
    #: temporary release before the hand-off
    release_seconds: int = field(default=60, metadata={"check": positive})
    releases_per_hour: int = field(default=3, metadata={"check": positive})
    #: web authorization (网页授权) of the official account
    oauth_app_id: str | None = None
    oauth_secret: str | None = None
    #: official-account server token (signature of pushes)
    token: str | None = None
    #: the member card in WeChat (会员卡, portal.wechat.card): the logo's URL on WeChat's image host (uploaded once
    #: with media/uploadimg); set, the member page offers "add to WeChat" (with oauth_app_id/oauth_secret)
    member_card_logo_url: str | None = None
    #: base URLs, configurable so that tests and the demo can point at the local fake
    open_base: str = "https://open.weixin.qq.com"
    api_base: str = "https://api.weixin.qq.com"
    #: the JS of 微信连Wi-Fi
    wifi_js_url: str = "https://wifi.weixin.qq.com/resources/js/wechatticket/wechatutil.js"
    #: the base URLs point at keliu's local FAKE WeChat (keliu.testing.wechat_fake): every WeChat page says so
    fake: bool = False
