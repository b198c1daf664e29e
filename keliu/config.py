"""Layered, typed configuration for every component (pure, apart from `load`).

Values come in layers, later ones winning:

1. defaults in code (the dataclasses of each component's ``config`` module);
2. one TOML file: ``$KELIU_CONFIG`` or ``./keliu.toml`` (see ``docs/keliu.example.toml``);
3. ``KELIU_*`` environment variables: ``KELIU_DATABASE_URL`` for a top-level key, ``KELIU_PORTAL_PORT`` for
   ``[portal] port`` and so on;
4. overrides passed by the caller (tests).

Everything is validated once, here. A bad value raises :class:`keliu.errors.ConfigError` naming the dotted key and
the reason; the CLI prints it as ``keliu: <key>: <reason>`` and exits with status 2. Secrets have no defaults: a
component asks :mod:`keliu.keys` for them, which generates them into ``var/`` on first run.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import netaddr

from keliu.errors import ConfigError
from keliu.redaction import redact_url

if typing.TYPE_CHECKING:
    from analytics.config import AnalyticsConfig
    from dashboards.config import DashboardsConfig
    from keliu.accesslog.config import AccesslogConfig
    from keliu.tls import DatabaseConfig
    from marketing.config import MarketingConfig
    from portal.config import PortalConfig, SmsConfig, WechatConfig
    from router_config.config import RouterConfig
    from sensor.config import SensorConfig

# ---------------------------------------------------------------------------------------------------------------
# validators usable in field metadata: ``field(default=..., metadata={"check": mac})``


def mac(value: str) -> str:
    """A MAC address in any common notation, normalised to lower-case colon form."""
    try:
        return str(netaddr.EUI(value, dialect=netaddr.mac_unix_expanded)).lower()
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise ValueError(f"not a MAC address: {value!r}") from exc


def cidr(value: str) -> str:
    """An IPv4 or IPv6 network or address in CIDR notation."""
    if "/" not in value and ":" not in value and value.count(".") != 3:
        raise ValueError(f"not a CIDR network: {value!r}")
    try:
        return str(netaddr.IPNetwork(value))
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise ValueError(f"not a CIDR network: {value!r}") from exc


def ipv4(value: str) -> str:
    """A single IPv4 address."""
    try:
        return str(netaddr.IPAddress(value, version=4, flags=netaddr.INET_PTON))
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise ValueError(f"not an IPv4 address: {value!r}") from exc


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port out of range 1-65535: {value}")
    return value


def positive(value: float) -> int | float:
    if value <= 0:
        raise ValueError(f"must be positive: {value}")
    return value


def slug(value: str) -> str:
    """An identifier for a mall or store: letters, digits, '-' and '_' (it appears in URLs and tags)."""
    if not value or not all(c.isalnum() or c in "-_" for c in value) or not value.isascii():
        raise ValueError(f"not an identifier (ASCII letters, digits, - and _): {value!r}")
    return value


def each(check: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """Apply ``check`` to every item of a list."""

    def run(values: list[Any]) -> list[Any]:
        return [check(v) for v in values]

    return run


# ---------------------------------------------------------------------------------------------------------------
# conversion of one raw value to the declared type


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list of " + _type_name(typing.get_args(tp)[0]) + "s"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", type(None): "unset"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(tp: Any, raw: Any, from_env: bool) -> Any:
    """Convert ``raw`` to ``tp`` or raise ValueError. Environment values arrive as strings and are parsed."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if (raw is None or (from_env and raw == "")) and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, raw, from_env)
            except ValueError:
                continue
        raise ValueError(f"expected {_type_name(tp)}, got {raw!r}")
    if origin is Literal:
        if raw in typing.get_args(tp):
            return raw
        raise ValueError(f"expected {_type_name(tp)}, got {raw!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if from_env and isinstance(raw, str):
            raw = [p.strip() for p in raw.split(",") if p.strip()]
        if not isinstance(raw, list):
            raise ValueError(f"expected {_type_name(tp)}, got {raw!r}")
        return [_coerce(item, r, from_env) for r in raw]
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if from_env and isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        raise ValueError(f"expected a boolean, got {raw!r}")
    if tp is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if from_env and isinstance(raw, str):
            try:
                return int(raw)
            except ValueError:
                pass
        raise ValueError(f"expected an integer, got {raw!r}")
    if tp is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if from_env and isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {raw!r}")
    if tp is str:
        if isinstance(raw, str):
            return raw
        raise ValueError(f"expected a string, got {raw!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(raw, Mapping):
            raise ValueError(f"expected a table, got {raw!r}")
        return raw  # built by _build, which knows the key prefix
    raise ValueError(f"unsupported type {tp!r}")


def _build(cls: type[Any], raw: Mapping[str, Any], prefix: str, env: Mapping[str, str], env_prefix: str) -> Any:
    """Build dataclass ``cls`` from a TOML table plus environment variables, validating every field."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(prefix + key, "unknown key")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        tp = hints[f.name]
        env_name = env_prefix + f.name.upper()
        try:
            if typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
                item_cls = typing.get_args(tp)[0]
                items = raw.get(f.name, [])
                if not isinstance(items, list):
                    raise ValueError(f"expected an array of tables, got {items!r}")
                values[f.name] = [
                    _build(item_cls, _table(it, f"{key}[{i}]"), f"{key}[{i}].", {}, "\0")
                    for i, it in enumerate(items)
                ]
                continue
            if dataclasses.is_dataclass(tp):
                values[f.name] = _build(
                    typing.cast(type[Any], tp), _table(raw.get(f.name, {}), key), key + ".", env, env_name + "_"
                )
                continue
            if env_name in env:
                value = _coerce(tp, env[env_name], from_env=True)
            elif f.name in raw:
                value = _coerce(tp, raw[f.name], from_env=False)
            else:
                continue  # keep the default
            check = f.metadata.get("check")
            if check is not None and value is not None:
                value = check(value)
            values[f.name] = value
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(key, str(exc)) from exc
    try:
        obj = cls(**values)
    except TypeError as exc:  # a required field (a secret or an id) is missing
        raise ConfigError(prefix.rstrip(".") or "config", f"missing required key: {exc}") from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(prefix.rstrip(".") or "config", str(exc)) from exc
    return obj


def _table(raw: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected a table, got {raw!r}")
    return raw


# ---------------------------------------------------------------------------------------------------------------
# the whole configuration


@dataclasses.dataclass(frozen=True)
class MallConfig:
    id: str = dataclasses.field(metadata={"check": slug})
    name: str = ""


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    id: str = dataclasses.field(metadata={"check": slug})
    mall: str = dataclasses.field(metadata={"check": slug})
    name: str = ""
    timezone: str = "Asia/Shanghai"


def _component(module: str, cls: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), cls)


@dataclasses.dataclass(frozen=True)
class Config:
    """The root of the configuration. Component sections are their packages' own dataclasses."""

    # the components' sections, built from SECTIONS (typed here for the checker only: the base imports no component)
    portal: PortalConfig
    sms: SmsConfig
    wechat: WechatConfig
    sensor: SensorConfig
    analytics: AnalyticsConfig
    router: RouterConfig
    dashboards: DashboardsConfig
    accesslog: AccesslogConfig
    #: ``[database]``: TLS to PostgreSQL (keliu.tls); already folded into ``database_url``'s query
    database: DatabaseConfig
    marketing: MarketingConfig
    database_url: str = "sqlite:///var/keliu.db"
    var_dir: str = "var"
    timezone: str = "Asia/Shanghai"
    malls: list[MallConfig] = dataclasses.field(default_factory=lambda: [MallConfig(id="demo-mall", name="Demo Mall")])
    stores: list[StoreConfig] = dataclasses.field(
        default_factory=lambda: [StoreConfig(id="demo-store", mall="demo-mall", name="Demo Store")]
    )

    def validate(self) -> None:
        malls = {m.id for m in self.malls}
        if len(malls) != len(self.malls):
            raise ValueError("malls: duplicate mall id")
        ids = [s.id for s in self.stores]
        if len(set(ids)) != len(ids):
            raise ValueError("stores: duplicate store id")
        for s in self.stores:
            if s.mall not in malls:
                raise ValueError(f"stores: store {s.id!r} names unknown mall {s.mall!r}")

    def store(self, store_id: str) -> StoreConfig:
        for s in self.stores:
            if s.id == store_id:
                return s
        known = ", ".join(s.id for s in self.stores)
        raise ConfigError("stores", f"no store with id {store_id!r} (configured: {known})")

    def mall(self, mall_id: str) -> MallConfig:
        for m in self.malls:
            if m.id == mall_id:
                return m
        known = ", ".join(m.id for m in self.malls)
        raise ConfigError("malls", f"no mall with id {mall_id!r} (configured: {known})")

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)


# Section name -> (module, dataclass). Each component owns its dataclass; the loader only validates it.
SECTIONS: dict[str, tuple[str, str]] = {
    "portal": ("portal.config", "PortalConfig"),
    "sms": ("portal.config", "SmsConfig"),
    "wechat": ("portal.config", "WechatConfig"),
    "sensor": ("sensor.config", "SensorConfig"),
    "analytics": ("analytics.config", "AnalyticsConfig"),
    "router": ("router_config.config", "RouterConfig"),
    "dashboards": ("dashboards.config", "DashboardsConfig"),
    "accesslog": ("keliu.accesslog.config", "AccesslogConfig"),
    "database": ("keliu.tls", "DatabaseConfig"),
    "marketing": ("marketing.config", "MarketingConfig"),
}
_TOP = ("database_url", "var_dir", "timezone")


def _default(name: str) -> Any:
    return next(f.default for f in dataclasses.fields(Config) if f.name == name)


def build(raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Validate a raw mapping (as read from TOML) plus environment variables into a :class:`Config`. Pure."""
    env = {} if env is None else env
    known = set(_TOP) | set(SECTIONS) | {"malls", "stores"}
    for key in raw:
        if key not in known:
            raise ConfigError(key, "unknown key")
    values: dict[str, Any] = {}
    for name in _TOP:
        env_name = "KELIU_" + name.upper()
        try:
            if env_name in env:
                values[name] = _coerce(str, env[env_name], from_env=True)
            elif name in raw:
                values[name] = _coerce(str, raw[name], from_env=False)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from exc
    if "database_url" in values:
        _check_database_url(values["database_url"])
    for name in ("malls", "stores"):
        if name in raw:
            item_cls = MallConfig if name == "malls" else StoreConfig
            items = raw[name]
            if not isinstance(items, list):
                raise ConfigError(name, f"expected an array of tables, got {items!r}")
            values[name] = [_build(item_cls, _table(it, f"{name}[{i}]"), f"{name}[{i}].", {}, "\0")
                            for i, it in enumerate(items)]
    for name, (module, cls_name) in SECTIONS.items():
        cls = _component(module, cls_name)
        values[name] = _build(cls, _table(raw.get(name, {}), name), name + ".", env, f"KELIU_{name.upper()}_")
    _check_env(env)
    from keliu import tls

    values["database_url"] = tls.database_url(values.get("database_url", _default("database_url")), values["database"])
    cfg = Config(**values)
    try:
        cfg.validate()
    except ValueError as exc:
        key, _, reason = str(exc).partition(": ")
        raise ConfigError(key, reason) from exc
    return cfg


#: ``KELIU_*`` variables that are not configuration keys: the file to read, the tests' and benches' switches, and
#: the variables Grafana's provisioning expands (dashboards.grafana.provisioning)
NOT_KEYS = frozenset({
    "KELIU_CONFIG", "KELIU_REQUIRE_SERVICES", "KELIU_SCREENSHOTS", "KELIU_UPDATE_GOLDEN", "KELIU_VM_CACHE",
    "KELIU_VM_ACCEL", "KELIU_TEST_POSTGRES_URL", "KELIU_TEST_REDIS_URL", "KELIU_TEST_RABBITMQ_URL",
    "KELIU_TEST_CHROMIUM", "KELIU_INFLUX_URL", "KELIU_INFLUX_TOKEN",
})


def env_names() -> frozenset[str]:
    """Every ``KELIU_*`` variable a configuration key reads (``[section] key`` → ``KELIU_SECTION_KEY``)."""
    names = {"KELIU_" + n.upper() for n in _TOP}

    def walk(cls: type[Any], prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(typing.cast(type[Any], hints[f.name]), prefix + f.name.upper() + "_")
            elif not (typing.get_origin(hints[f.name]) is list
                      and dataclasses.is_dataclass(typing.get_args(hints[f.name])[0])):
                names.add(prefix + f.name.upper())

    for name, (module, cls_name) in SECTIONS.items():
        walk(_component(module, cls_name), f"KELIU_{name.upper()}_")
    return frozenset(names)


def _check_env(env: Mapping[str, str]) -> None:
    """A misspelled ``KELIU_*`` variable is an error, as the same typo in the TOML file is."""
    import difflib

    unknown = sorted(k for k in env if k.startswith("KELIU_") and k not in NOT_KEYS)
    if not unknown:
        return
    known = env_names()
    for name in unknown:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known | NOT_KEYS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(name, f"unknown environment variable: no configuration key reads it{hint}")


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError as exc:
        raise ConfigError("database_url", f"not an SQLAlchemy URL: {url!r}") from exc


def config_path(env: Mapping[str, str]) -> Path | None:
    """The TOML file to read: ``$KELIU_CONFIG`` (which must exist) or ``./keliu.toml`` if present."""
    named = env.get("KELIU_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError("KELIU_CONFIG", f"no such file: {named}")
        return path
    local = Path("keliu.toml")
    return local if local.is_file() else None


def load(overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file and the environment, apply ``overrides`` (a nested mapping), validate. An edge."""
    env = dict(os.environ) if env is None else dict(env)
    raw: dict[str, Any] = {}
    path = config_path(env)
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    if overrides:
        raw = merge(raw, overrides)
    cfg = build(raw, env)
    from keliu import tls

    tls.check_files(cfg.database, cfg.analytics)  # the certificates and keys named, read once at start-up
    return cfg


SECRET_WORDS = ("secret", "password", "token", "passphrase", "key")


def redacted(value: Any, name: str = "") -> Any:
    """A copy of a nested mapping for printing: every secret-looking value replaced by ``"***"``, and the password of
    every URL-valued string hidden (``postgresql://user:***@host/db``), whatever its key is called."""
    if isinstance(value, Mapping):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, name) for v in value]
    if value is not None and any(w in name.lower() for w in SECRET_WORDS) and not name.endswith(("_id", "_url")):
        return "***"
    if isinstance(value, str):
        return redact_url(value)
    return value


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two nested mappings; ``top`` wins."""
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
