"""Errors of the router_config package (pure).

::

    RouterError (a KeliuError)   every error raised here; the CLI prints it as ``keliu: <message>``
    ├── PolicyError              a bad value reached the model or a Gate command (names the key and the value)
    ├── NftError                 libnftables refused a command (carries nft's own message)
    ├── ConntrackError           the conntrack table could not be read or changed
    ├── BenchError               the network-namespace bench could not be built
    └── MonitorError             no monitor-mode interface could be created (no nl80211 or no such phy)
"""
from __future__ import annotations

from keliu.errors import KeliuError


class RouterError(KeliuError):
    """Base of the package's errors."""


class PolicyError(RouterError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class NftError(RouterError):
    def __init__(self, message: str, script: str = "") -> None:
        super().__init__(message)
        self.script = script


class ConntrackError(RouterError):
    pass


class BenchError(RouterError):
    pass


class MonitorError(RouterError):
    pass
