"""How much the ``keliu`` commands say on the console (state of the process, set once by the CLI).

Quiet by default: warnings and errors, and what a command exists to print (a report, the demo's URLs and SMS codes).
``keliu -v …`` adds the components' progress lines (INFO), ``-vv`` debugging (DEBUG). Long-running commands pass
the same flag to the processes they start (:func:`argv`).
"""
from __future__ import annotations

import logging
import sys

_verbosity = [0]


def set_verbosity(n: int) -> None:
    _verbosity[0] = max(0, n)


def verbosity() -> int:
    return _verbosity[0]


def level() -> int:
    """The logging level: WARNING, INFO with ``-v``, DEBUG with ``-vv``."""
    return {0: logging.WARNING, 1: logging.INFO}.get(_verbosity[0], logging.DEBUG)


def setup(prefix: str) -> None:
    """Log to stderr at :func:`level`, each line starting with ``prefix`` (e.g. ``keliu sensor``)."""
    logging.basicConfig(level=level(), stream=sys.stderr, format=f"{prefix} %(asctime)s %(levelname)s %(message)s",
                        force=True)
    # libraries' start-up chatter (alembic's "setup plugin" lines, Celery's task lines) only with -vv
    for name in ("alembic", "celery", "kombu"):
        logging.getLogger(name).setLevel(level() if _verbosity[0] >= 2 else logging.WARNING)


def argv() -> list[str]:
    """The flag that gives a child ``keliu`` process the same verbosity (empty when quiet)."""
    return ["-" + "v" * _verbosity[0]] if _verbosity[0] else []
