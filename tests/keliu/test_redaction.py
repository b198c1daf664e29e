from __future__ import annotations

import pytest

from keliu.redaction import redact_url


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
        ("postgresql+psycopg://user:p@ss:w/rd@host:5432/db", "postgresql+psycopg://user:***@host:5432/db"),
        ("redis://:pw@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("amqp://guest:guest@localhost:5672//", "amqp://guest:***@localhost:5672//"),
        ("http://influx:8086/?org=k&token=abc&db=x", "http://influx:8086/?org=k&token=***&db=x"),
        ("postgresql://u@h/db?sslpassword=abc", "postgresql://u@h/db?sslpassword=***"),
        ("writing 3 points to http://a:b@h:1/: refused", "writing 3 points to http://a:***@h:1/: refused"),
        ("sqlite:///var/keliu.db", "sqlite:///var/keliu.db"),
        ("https://user@host/path", "https://user@host/path"),
        ("no url: key=1&password=2", "no url: key=1&password=2"),
    ],
)
def test_redact_url(text: str, shown: str) -> None:
    assert redact_url(text) == shown
