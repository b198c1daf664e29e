"""``keliu sensor``: the command-line group of the sensor package (composition root for its commands).

    keliu sensor run --iface IFACE [--channels 1,6,11,36]      live capture (needs a monitor-mode wireless card)
    keliu sensor replay FILE --store STORE [--speed N | --max] [--loop]
    keliu sensor parse FILE [--format jsonl|csv] [--show-mac]   one line per probe request; stores nothing
    keliu sensor calibrate (--iface IFACE | --file FILE)      placement: strongest devices live, visit/stay_rssi
    keliu sensor stations --ctrl /var/run/hostapd/IFACE [--interval S] [--once]   the AP's connected stations
"""
from __future__ import annotations

import logging
import secrets
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from keliu.redaction import redact_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from sensor.stations import Station

log = logging.getLogger("sensor")


def _logging() -> None:
    from keliu import console

    console.setup("keliu sensor")


def _utc_offset(tz: str) -> int:
    from zoneinfo import ZoneInfo

    off = datetime.now(ZoneInfo(tz)).utcoffset()
    return int(off.total_seconds()) if off else 0


def _policy(cfg: Any, store_tz: str, group_all: bool | None) -> Any:
    from sensor.identity import PrivacyPolicy

    s = cfg.sensor
    return PrivacyPolicy(mode=s.privacy, link_days=s.link_days, utc_offset_s=_utc_offset(store_tz),
                         group_all=s.group_all if group_all is None else group_all, max_macs=s.max_macs)


def _parser(cfg: Any, fcs: str) -> Any:
    """The frame parser, its timestamp window on the wall clock (``[sensor] ts_earliest``, ``ts_ahead_s``)."""
    import time

    from sensor.frames import Parser

    s = cfg.sensor
    return Parser("flag" if fcs == "flag" else "verify", clock=time.time, earliest=s.ts_earliest,
                  ahead_s=s.ts_ahead_s)


def build_pipeline(cfg: Any, store: str, *, fcs: str | None = None, group_all: bool | None = None,
                   background: bool = False, sensor_id: str | None = None) -> Any:
    """Wire config, keys, database, spool and sink into a :class:`sensor.pipeline.Pipeline` (``sensor_id``: the
    name its sightings carry and its spool is kept under; default ``[sensor] sensor_id``)."""
    import sqlalchemy as sa

    from keliu import db, keys
    from sensor import consent
    from sensor.grouping import Identifier
    from sensor.identity import Registry, mac_bytes, sid_key
    from sensor.pipeline import Pipeline
    from sensor.sightings import Batcher
    from sensor.sinks import CelerySink, Delivery, SqlHealth, SqlSink
    from sensor.spool import Spool

    s = cfg.sensor
    tz = cfg.store(store).timezone
    master = keys.secret_bytes(cfg.var_dir, "device_hmac")
    ident = Identifier(master, _policy(cfg, tz, group_all), ignore=frozenset(mac_bytes(m) for m in s.ignore_macs))
    engine = db.make_engine(cfg.database_url)
    try:
        db.upgrade(engine)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        log.warning("database not reachable (%s); sightings wait in the spool",
                    redact_url(str(exc).splitlines()[0][:200]))
    broker = getattr(cfg.analytics, "broker_url", None)
    sink: Any
    if s.sink == "celery" or (s.sink == "auto" and broker):
        if not broker:
            from keliu.errors import ConfigError

            raise ConfigError("sensor.sink", "celery needs analytics.broker_url")
        from keliu import tls

        a = cfg.analytics
        sink = CelerySink(broker, getattr(a, "queue", None),
                          ssl=tls.broker_use_ssl(getattr(a, "broker_ssl_ca", None), getattr(a, "broker_ssl_cert", None),
                                                 getattr(a, "broker_ssl_key", None)))
    else:
        sink = SqlSink(engine)
    spool_root = Path(s.spool_dir) if s.spool_dir else Path(cfg.var_dir) / "spool"
    name = sensor_id or s.sensor_id
    spool = Spool(spool_root / f"{store}-{name}", s.spool_max_mb * 2**20)
    last = [Registry()]

    def registry() -> Registry:
        try:
            last[0] = consent.load(engine)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("member/opt-out registry not readable (%s); keeping the last one", type(exc).__name__)
        return last[0]

    parser = _parser(cfg, fcs or s.fcs)
    return Pipeline(store=store, sensor=name, parser=parser, identifier=ident,
                    sid_key=sid_key(master), spool=spool, delivery=Delivery(spool, sink), health=SqlHealth(engine),
                    batcher=Batcher(s.batch_size, s.batch_seconds), mode=s.privacy,
                    health_seconds=s.health_seconds, registry=registry, registry_seconds=s.registry_seconds,
                    background=background)


def _stop_flag() -> list[bool]:
    flag = [False]

    def handler(_sig: int, _frame: object) -> None:
        flag[0] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return flag


@click.group("sensor")
def sensor() -> None:
    """Capture, replay and parse 802.11 probe requests."""


@sensor.command("run")
@click.option("--iface", required=True, help="A monitor-mode interface (radiotap).")
@click.option("--channels", default=None, help="Comma-separated channels to hop over (default: [sensor] channels).")
@click.option("--store", default=None, help="Store id (default: [sensor] store).")
def run_cmd(iface: str, channels: str | None, store: str | None) -> None:
    """Capture probe requests live, hopping channels, and deliver sightings."""
    from keliu import config
    from sensor.capture import capture, check_interface

    _logging()
    cfg = config.load()
    sid = _store(cfg, store)
    chans = [int(c) for c in channels.split(",")] if channels else list(cfg.sensor.channels)
    check_interface(iface)  # before touching keys or the database: says why live capture cannot run here
    pipe = build_pipeline(cfg, sid, background=True)
    flag = _stop_flag()
    capture(iface, chans, cfg.sensor.dwell_ms, pipe, stop=lambda: flag[0])


FCS_HELP = ("verify (default): drop frames whose FCS (checksum) is wrong; flag: trust only the driver's bad-FCS "
            "flag. Use flag for anonymized captures whose rewritten addresses no longer match their FCS.")


def _store(cfg: Any, store: str | None) -> str:
    """The store id given (or the configured one), which must be a configured store (else a config error)."""
    sid = store or cfg.sensor.store
    cfg.store(sid)
    return str(sid)


def _warn_capture(file: str, stats: Any, fcs: str) -> None:
    """Warnings a technician needs: every frame failed its FCS check (the --fcs hint), a truncated file. A file of
    which not one probe request could be read is an error (exit status 1) after the warnings."""
    from sensor.errors import CaptureFormatError
    from sensor.replay import truncated

    warned = False
    if fcs == "verify" and stats.bad_fcs and stats.bad_fcs == stats.frames:
        click.echo(f"keliu sensor: warning: all {stats.bad_fcs} frames failed their FCS check; an anonymized capture "
                   "(rewritten MAC addresses) keeps the old checksums: try --fcs flag", err=True)
        warned = True
    cut = truncated(file)
    if cut:
        click.echo(f"keliu sensor: warning: {file} is truncated: its last {cut} bytes are not a whole record "
                   "(a capture cut short); the records before them were read", err=True)
        warned = True
    if warned and not (stats.probes or stats.assocs):
        raise CaptureFormatError(f"{file}: no probe request could be read (see the warning above)")


@sensor.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--store", default=None, help="Store id (default: [sensor] store).")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Replay N times faster than recorded.")
@click.option("--max", "as_fast", is_flag=True, help="As fast as possible.")
@click.option("--loop", is_flag=True, help="Forever; timestamps moved to now, then one more day each round.")
@click.option("--follow-clock", is_flag=True,
              help="Forever, on the wall clock: the recording moved by whole days onto today (time of day kept), "
                   "what is due fed at once, the rest when the clock reaches it; then tomorrow. Never ahead of now.")
@click.option("--fcs", type=click.Choice(["verify", "flag"]), default=None, help=FCS_HELP + " Default: [sensor] fcs.")
def replay_cmd(file: str, store: str | None, speed: float, as_fast: bool, loop: bool, follow_clock: bool,
               fcs: str | None) -> None:
    """Replay a pcap/pcapng capture through the sensor pipeline into the analytics store."""
    from keliu import config
    from sensor.frames import MAX_SIGNAL_DBM
    from sensor.replay import replay

    if speed <= 0:
        raise click.BadParameter(f"must be positive: {speed}", param_hint="--speed")
    _logging()
    cfg = config.load()
    sid = _store(cfg, store)
    pipe = build_pipeline(cfg, sid, fcs=fcs)
    flag = _stop_flag()
    follow = _utc_offset(cfg.store(sid).timezone) if follow_clock else None
    n = replay(file, pipe, speed=None if as_fast else speed, loop=loop, stop=lambda: flag[0], follow=follow)
    st = pipe.parser.stats
    click.echo(f"keliu sensor: replayed {n} probe requests ({st.frames} frames, {st.drops} dropped, "
               f"{st.bad_ts} of them stamped outside the timestamp window, {st.bad_signal} signals above "
               f"{MAX_SIGNAL_DBM:+d} dBm read as none, {pipe.identifier.evicted} MACs evicted, "
               f"{pipe.identifier.stats.devices} estimated devices), {pipe.delivery.delivered} sightings delivered, "
               f"{len(pipe.spool.pending())} batches still spooled")
    _warn_capture(file, st, fcs or cfg.sensor.fcs)



@sensor.command("parse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--show-mac", is_flag=True, help="Also print the raw MAC (for a technician; nothing is stored).")
@click.option("--fcs", type=click.Choice(["verify", "flag"]), default="verify", show_default=True, help=FCS_HELP)
@click.option("--group-all", is_flag=True, help="Group every MAC as if randomized (anonymized captures).")
@click.option("--store", default=None, help="Store whose time zone the times are printed in (default: [sensor] store).")
def parse_cmd(file: str, fmt: str, show_mac: bool, fcs: str, group_all: bool, store: str | None) -> None:
    """Print one record per probe (or association) request; times in ISO 8601 with the store's UTC offset. Device ids use this
    appliance's key if it exists, else a throw-away key; nothing is written anywhere."""
    from zoneinfo import ZoneInfo

    from keliu import config, keys
    from sensor.frames import MAX_SIGNAL_DBM
    from sensor.grouping import Identifier
    from sensor.replay import iter_batches
    from sensor.rows import RowWriter, header

    cfg = config.load()
    tz = ZoneInfo(cfg.store(_store(cfg, store)).timezone)
    key_file = Path(cfg.var_dir) / "keys" / "device_hmac"
    # an existing key is read through keliu.keys, which refuses an empty or truncated one
    master = keys.secret_bytes(cfg.var_dir, "device_hmac") if key_file.exists() else secrets.token_bytes(32)
    ident = Identifier(master, _policy(cfg, tz.key, group_all))
    parser = _parser(cfg, fcs)
    rows = RowWriter(cast(Any, fmt), tz, show_mac)
    # whole batches are formatted at once (sensor.rows) and written in pieces of about 1 MB
    out, pending, size = sys.stdout, [header(rows.fmt, show_mac)], 0
    for batch in iter_batches(parser, file):
        text = rows.text(batch, ident.identify_batch(batch))
        pending.append(text)
        size += len(text)
        if size >= 1 << 20:
            out.write("".join(pending))
            pending, size = [], 0
    out.write("".join(pending))
    out.flush()
    st = parser.stats
    click.echo(f"keliu sensor: {st.probes} probe requests, {st.assocs} association requests, {st.frames} frames, "
               f"{st.not_probe} other frames, "
               f"{st.malformed} malformed, {st.bad_fcs} bad FCS, {st.bad_ts} outside the timestamp window, "
               f"{st.bad_signal} signals above {MAX_SIGNAL_DBM:+d} dBm read as none", err=True)
    _warn_capture(file, st, fcs)


class _Calibration:
    """What live capture feeds (the pipeline's shape): probes identified and put on the board, nothing stored."""

    def __init__(self, parser: Any, ident: Any, board: Any) -> None:
        self.parser, self.ident, self.board = parser, ident, board
        self.channel: int | None = None

    def feed(self, batch: Any, _position: Any = None) -> None:
        devices = self.ident.identify_batch(batch)
        for i in range(len(batch)):
            if devices[i] is not None:
                p = batch.probe(i)
                self.board.add(p.ts, devices[i], p.rssi)

    def tick(self) -> None:
        pass

    def close(self, _position: Any = None) -> None:
        pass


def _board_text(board: Any, now: float, top: int, tz: Any, window_s: float = 60.0) -> str:
    rows = board.top(top, now, window_s)
    stamp = datetime.fromtimestamp(now, tz).isoformat(timespec="seconds")
    lines = [f"{stamp}  strongest devices (keyed ids; dBm)",
             f"{'device':<18}{'last':>6}{'max':>6}{'median':>8}{'heard':>7}{'ago':>7}"]
    lines += [f"{r.device:<18}{r.last:>6}{r.strongest:>6}{r.median:>8.1f}{r.count:>7}{r.seen_s_ago:>6.0f}s"
              for r in rows]
    return "\n".join(lines if rows else lines[:1] + ["(nothing heard yet)"])


@sensor.command("stations")
@click.option("--ctrl", "ctrl", required=True, type=click.Path(dir_okay=False),
              help="hostapd's control socket of the guest SSID (ctrl_interface dir + interface, e.g. "
                   "/var/run/hostapd/wlan0).")
@click.option("--store", default=None, help="Store the AP serves (default: [sensor] store).")
@click.option("--interval", type=click.FloatRange(min=1.0, max=150.0), default=10.0, show_default=True,
              help="Seconds between two reads of the station list (at most 150: every 5-minute slot gets a read).")
@click.option("--once", is_flag=True, help="Read the list once, deliver, exit (a check, or a cron job).")
def stations_cmd(ctrl: str, store: str | None, interval: float, once: bool) -> None:
    """Feed the AP's associated stations (hostapd) to analytics as sightings of basis "connected": keyed device
    ids (never a MAC), stored through the same spool and sink as the probes, under sensor id <sensor_id>-ap; and
    each read's record (the list heard, how many stations: no device), so an hour nobody connected in is told from
    an hour the list was not read in."""
    from keliu import config
    from sensor.hostapd import poll

    _logging()
    cfg = config.load()
    sid = _store(cfg, store)
    pipe = build_pipeline(cfg, sid, sensor_id=f"{cfg.sensor.sensor_id}-ap")
    fed = station_feed(cfg, pipe, sid)
    delivered = [0]

    def feed(found: list[Station], freq: int | None, now: float) -> None:
        n = fed(found, freq, now)
        delivered[0] += n
        log.info("hostapd: %d stations, %d associated and heard, as sightings", len(found), n)

    flag = _stop_flag()
    n = poll(ctrl, feed, interval=interval, stop=lambda: flag[0], rounds=1 if once else None)
    pipe.close()
    click.echo(f"keliu sensor: {n} reads of {ctrl}, {delivered[0]} station sightings, "
               f"{len(pipe.spool.pending())} batches still spooled")
    if once and n == 0:
        raise click.ClickException(f"hostapd at {ctrl} could not be read (see the warning above)")


def station_feed(cfg: Any, pipe: Any, store: str) -> Callable[[list[Station], int | None, float], int]:
    """What one read of the AP's station list feeds ``pipe`` (a pipeline of sensor id ``<sensor_id>-ap``): the
    associated stations heard, as sightings of keyed devices (the portal's opt-outs and the router's own radios
    dropped), and the read's record; returns the sightings fed. ``keliu sensor stations`` feeds each read with it,
    and so does the demo reading its day so far."""
    from keliu import keys
    from sensor.identity import mac_bytes
    from sensor.stations import poll_record, station_sightings

    master = keys.secret_bytes(cfg.var_dir, "device_hmac")
    ignore = frozenset(mac_bytes(m).hex(":") for m in cfg.sensor.ignore_macs)

    def feed(found: list[Station], freq: int | None, now: float) -> int:
        pipe.refresh_registry(now)
        items = station_sightings(found, now, store, pipe.sensor, master, pipe.identifier.policy, pipe.sid_key,
                                  registry=pipe.identifier.registry, ignore=ignore, freq=freq)
        pipe.feed_sightings(items, poll_record(store, pipe.sensor, now, sum(1 for st in found if st.associated)))
        return len(items)

    return feed


@sensor.command("calibrate")
@click.option("--iface", default=None, help="Live: a monitor-mode interface (radiotap).")
@click.option("--file", "file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Instead of live capture: a capture file of the walk (pcap/pcapng).")
@click.option("--store", default=None, help="Store id (default: [sensor] store).")
@click.option("--channels", default=None, help="Live: comma-separated channels (default: [sensor] channels).")
@click.option("--seconds", type=click.IntRange(min=1), default=None, help="Live: stop after N seconds (default: Ctrl-C).")
@click.option("--device", default=None, help="The walking phone's device id (default: the strongest heard most).")
@click.option("--top", type=click.IntRange(1, 50), default=8, show_default=True, help="Devices shown.")
@click.option("--fcs", type=click.Choice(["verify", "flag"]), default=None, help=FCS_HELP + " Default: [sensor] fcs.")
def calibrate_cmd(iface: str | None, file: str | None, store: str | None, channels: str | None, seconds: int | None,
                  device: str | None, top: int, fcs: str | None) -> None:
    """Place and tune the sensor: shows the strongest devices' signal live while someone walks in and out of the
    store with a phone (Wi-Fi settings open), then suggests visit_rssi and stay_rssi for the store. Devices are
    shown by keyed id, never by MAC; nothing is stored."""
    import time
    from zoneinfo import ZoneInfo

    from keliu import config, keys
    from sensor.calibrate import Board, NoSuggestion, suggest
    from sensor.grouping import Identifier

    if (iface is None) == (file is None):
        raise click.UsageError("give either --iface (live) or --file (a capture of the walk)")
    cfg = config.load()
    sid = _store(cfg, store)
    tz = ZoneInfo(cfg.store(sid).timezone)
    key_file = Path(cfg.var_dir) / "keys" / "device_hmac"
    master = keys.secret_bytes(cfg.var_dir, "device_hmac") if key_file.exists() else secrets.token_bytes(32)
    ident = Identifier(master, _policy(cfg, tz.key, None))
    parser = _parser(cfg, fcs or cfg.sensor.fcs)
    board = Board()
    sink = _Calibration(parser, ident, board)
    if file is not None:
        from sensor.replay import iter_batches

        for batch in iter_batches(parser, file):
            sink.feed(batch)
        last = max((t.readings[-1][0] for t in board.tracks.values()), default=time.time())
        click.echo(_board_text(board, last, top, tz, window_s=float("inf")))  # the whole walk
        _warn_capture(file, parser.stats, fcs or cfg.sensor.fcs)
    else:
        from sensor.capture import capture, check_interface

        assert iface is not None
        chans = [int(c) for c in channels.split(",")] if channels else list(cfg.sensor.channels)
        check_interface(iface)
        flag = _stop_flag()
        t_end = None if seconds is None else time.monotonic() + seconds
        tty = sys.stdout.isatty()
        shown = [0.0]

        def stop() -> bool:
            now = time.monotonic()
            if now - shown[0] >= (1.0 if tty else 5.0):
                shown[0] = now
                text = _board_text(board, time.time(), top, tz)
                click.echo(("\x1b[H\x1b[2J" if tty else "") + text + ("" if tty else "\n"))
            return flag[0] or (t_end is not None and now >= t_end)

        capture(iface, chans, cfg.sensor.dwell_ms, cast(Any, sink), stop=stop)  # the pipeline's shape
        click.echo(_board_text(board, time.time(), top, tz))
    walker = device or board.walker()
    if walker is None:
        raise click.ClickException("no device heard: nothing to suggest")
    rules = cfg.analytics
    result = suggest(board.readings(walker), rules.passerby_rssi)
    if isinstance(result, NoSuggestion):
        click.echo(f"\nno suggestion for store {sid} (device {walker}): {result.reason}", err=True)
        sys.exit(1)
    click.echo(f"\nthe walking phone: device {walker}, {result.inside[0]} readings inside (10th percentile "
               f"{result.inside[1]} dBm), {result.outside[0]} outside (90th percentile {result.outside[1]} dBm)\n"
               f"suggested for store {sid} (now visit_rssi = {rules.visit_rssi}, stay_rssi = {rules.stay_rssi}):\n\n"
               f"[[analytics.stores]]\nid = \"{sid}\"\nvisit_rssi = {result.visit_rssi}\n"
               f"stay_rssi = {result.stay_rssi}")
