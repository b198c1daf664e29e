"""Errors of the sensor package.

    KeliuError (keliu.errors)
    └── SensorError                 base of everything the sensor raises on purpose
        ├── CaptureFormatError      a file is not a pcap/pcapng capture (or its header is broken)
        ├── CaptureUnavailable      live capture cannot run here (no wireless card, no monitor mode, no root)
        ├── StationsUnavailable     hostapd's control socket is missing or silent (sensor.hostapd)
        ├── SpoolFull               the on-disk spool reached its bound; new batches are refused (loudly)
        └── DeliveryError           a sink (database, broker) failed; the batch stays in the spool

A malformed *frame* is not an error: the parser's per-frame boundary counts and skips it (``sensor.frames``).
"""
from __future__ import annotations

from keliu.errors import KeliuError


class SensorError(KeliuError):
    """Base class of the sensor's deliberate errors."""


class CaptureFormatError(SensorError):
    """The file is not a capture the sensor can read."""


class CaptureUnavailable(SensorError):
    """Live capture is not possible on this machine; the message says why."""


class StationsUnavailable(SensorError):
    """hostapd's control interface cannot be read; the message names the socket and why."""


class SpoolFull(SensorError):
    """The spool is at its size bound."""


class DeliveryError(SensorError):
    """A sink could not deliver a batch; raised from the library's exception."""
