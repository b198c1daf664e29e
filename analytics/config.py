"""Typed configuration of analytics: ``[analytics]`` and its per-store ``[[analytics.stores]]`` overrides (pure).

The metric definitions behind every value are in docs/METRICS.md. :meth:`AnalyticsConfig.rules_for` resolves the
rules of one store (its overrides over the section's defaults) into a :class:`analytics.visits.Rules`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from analytics.visits import Rules
from keliu import tls
from keliu.config import positive, slug


def _hour(value: int) -> int:
    if not 0 <= value <= 24:
        raise ValueError(f"hour out of range 0-24: {value}")
    return value


def _fraction(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError(f"must be in (0, 1]: {value}")
    return value


def _retention(value: int) -> int:
    if not isinstance(value, int) or value < 2:
        raise ValueError(f"at least 2 days, not {value!r}: the roll-ups read today's and yesterday's sightings, and"
                         " a shorter retention would purge yesterday's before its last roll-up, which would then"
                         " overwrite its figures with smaller ones")
    return value


@dataclass(frozen=True)
class StoreRules:
    """``[[analytics.stores]]``: a store's own definitions; unset keys inherit ``[analytics]``."""

    id: str = field(metadata={"check": slug})
    passerby_rssi: int | None = None
    visit_rssi: int | None = None
    stay_rssi: int | None = None
    min_dwell_s: int | None = field(default=None, metadata={"check": positive})
    visit_gap_s: int | None = field(default=None, metadata={"check": positive})
    open_hour: int | None = field(default=None, metadata={"check": _hour})
    close_hour: int | None = field(default=None, metadata={"check": _hour})
    staff_fraction: float | None = field(default=None, metadata={"check": _fraction})
    staff_days: int | None = field(default=None, metadata={"check": positive})
    #: device ids always excluded as staff or fixed devices at this store (added to the global list)
    staff_devices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnalyticsConfig:
    #: Celery broker; unset runs tasks in-process (the embedded default)
    broker_url: str | None = None
    #: TLS to a RabbitMQ broker (amqp://host:5671): the fleet CA's certificate, and this host's certificate and key
    #: (keliu fleet cert issue); they become Celery's broker_use_ssl (keliu.tls), for the sensor's sink too
    broker_ssl_ca: str | None = None
    broker_ssl_cert: str | None = None
    broker_ssl_key: str | None = None
    result_backend: str | None = None
    #: the queue of the store and mall tasks; workers also consume Celery's default queue "celery"
    queue: str = field(default="analytics", metadata={"check": slug})
    #: Redis transport: seconds before an unacknowledged task is redelivered (keep above the longest task)
    visibility_timeout: int = field(default=3600, metadata={"check": positive})
    #: InfluxDB-compatible server for rollups (InfluxDB 1.8+/2.x/3.x, VictoriaMetrics); unset: not written
    influx_url: str | None = None
    influx_token: str | None = None
    influx_org: str = "keliu"
    influx_bucket: str = "keliu"
    #: visit definition (Aruba/Cloud4Wi/Cisco defaults; see docs/METRICS.md)
    passerby_rssi: int = -90
    visit_rssi: int = -65
    stay_rssi: int = -70
    min_dwell_s: int = field(default=300, metadata={"check": positive})
    visit_gap_s: int = field(default=900, metadata={"check": positive})
    #: staff and fixed devices
    open_hour: int = field(default=10, metadata={"check": _hour})
    close_hour: int = field(default=22, metadata={"check": _hour})
    staff_fraction: float = field(default=0.6, metadata={"check": _fraction})
    staff_days: int = field(default=4, metadata={"check": positive})
    staff_devices: list[str] = field(default_factory=list)
    #: retention: raw sightings and visits; the per-device day table (loyalty, staff history); rollups are kept
    raw_retention_days: int = field(default=30, metadata={"check": _retention})
    history_days: int = field(default=90, metadata={"check": positive})
    stores: list[StoreRules] = field(default_factory=list)

    def broker_use_ssl(self) -> dict[str, object] | None:
        """Celery's broker_use_ssl for these settings (None: plain AMQP)."""
        return tls.broker_use_ssl(self.broker_ssl_ca, self.broker_ssl_cert, self.broker_ssl_key)

    def validate(self) -> None:
        tls.check_broker(self.broker_url, self.broker_ssl_ca, self.broker_ssl_cert, self.broker_ssl_key)
        pairs = [(self.stay_rssi, self.visit_rssi)] + [(s.stay_rssi, s.visit_rssi) for s in self.stores]
        for stay, visit in pairs:
            if stay is not None and visit is not None and stay > visit:
                raise ValueError(f"stay_rssi ({stay}) must not be above visit_rssi ({visit})")
        ids = [s.id for s in self.stores]
        if len(set(ids)) != len(ids):
            raise ValueError("stores: duplicate store id")

    def rules_for(self, store_id: str) -> Rules:
        """The effective rules of one store: its ``[[analytics.stores]]`` overrides over the defaults."""
        own = next((s for s in self.stores if s.id == store_id), None)

        def pick(name: str) -> object:
            value = getattr(own, name, None) if own is not None else None
            return getattr(self, name) if value is None else value

        staff = tuple(sorted(set(self.staff_devices) | set(own.staff_devices if own else [])))
        rules = Rules(
            passerby_rssi=int(pick("passerby_rssi")),  # type: ignore[call-overload]
            visit_rssi=int(pick("visit_rssi")),  # type: ignore[call-overload]
            stay_rssi=int(pick("stay_rssi")),  # type: ignore[call-overload]
            min_dwell_s=int(pick("min_dwell_s")),  # type: ignore[call-overload]
            visit_gap_s=int(pick("visit_gap_s")),  # type: ignore[call-overload]
            open_hour=int(pick("open_hour")),  # type: ignore[call-overload]
            close_hour=int(pick("close_hour")),  # type: ignore[call-overload]
            staff_fraction=float(pick("staff_fraction")),  # type: ignore[arg-type]
            staff_days=int(pick("staff_days")),  # type: ignore[call-overload]
            history_days=self.history_days,
            staff_devices=staff,
        )
        rules.check()
        return rules
