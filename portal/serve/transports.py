"""Ending an asyncio connection without destroying its last answer (an edge: transports), shared by the portal's
worker and the captive front."""
from __future__ import annotations

import asyncio
from typing import Any

#: seconds a connection that may still be sending is read (and dropped) after its last answer
LINGER_S = 2.0


def close(transport: Any, linger: bool) -> None:
    """Close ``transport``; with ``linger`` (the client may still be sending: a refused body, an upgrade) half-close,
    then drop what arrives until the client closes or :data:`LINGER_S` pass. Closing a socket with unread input
    makes the kernel answer with a reset, which can destroy the answer before the client has read it."""
    if linger and transport.can_write_eof():
        transport.write_eof()
        transport.resume_reading()
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)
    else:
        transport.close()
