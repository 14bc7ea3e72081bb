"""The board side of the wire, for any back end: protocol engine and servers.

:class:`Peer` speaks the protocol (frames, one host session, reply cache, dispatch,
watchdog, fault injection) over a :class:`Backend`, a table of message handlers plus a
few hardware hooks. :class:`PeerServer` serves a peer on a TCP socket or a pty. The host
side (``memhw.board``, ``memhw.link``) never imports this package; it reaches a peer
through bytes, in process (``mock://``) or over a real link.
"""

from .core import (
    CLIENT_MAX_BYTES,
    WATCHDOG_DEFAULT,
    Aborted,
    Backend,
    Connection,
    Counters,
    HandlerTable,
    Operation,
    Peer,
    Rebooted,
    Refused,
)
from .server import PeerServer

__all__ = ["Peer", "PeerServer", "Connection", "Operation", "Backend", "HandlerTable", "Counters", "Refused",
           "Aborted", "Rebooted", "WATCHDOG_DEFAULT", "CLIENT_MAX_BYTES"]
