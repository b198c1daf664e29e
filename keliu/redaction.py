"""Hide the secrets inside URLs before they are printed or logged (pure).

Passwords travel inside connection URLs: ``database_url``, ``[analytics] broker_url``, the result backend, InfluxDB,
Grafana, Redis. Anything that prints or logs such a URL, or a message that may quote one (a configuration error,
a library's exception), passes it through :func:`redact_url` first. It hides the password of the userinfo part
(``postgresql://user:***@host/db``) and the value of any query parameter whose name looks secret
(``?password=***``, ``?token=***``), and leaves the rest readable so an operator can still see which host is meant.
"""
from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@ — the password runs to the *last* "@" of the whitespace-delimited word, as SQLAlchemy and
# urllib read an unescaped "@" in a password; when in doubt this hides too much, never too little.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#\s@]*):(?P<password>\S*)@")
_SECRET_PARAM = re.compile(
    r"(?P<head>[?&;][^=&#\s]*(?:password|passwd|pwd|secret|token|passphrase|key|auth)[^=&#\s]*=)[^&#\s]*",
    re.IGNORECASE,
)


def redact_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (text without a URL is returned as is)."""
    if "://" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: m["head"] + MASK, text)
