"""The board emulator: a mock 1T1R chip behind a mock periphery, speaking the board protocol.

* :mod:`.params` -- every parameter, with its source (chip, periphery, board groups);
* :mod:`.chip`, :mod:`.periphery` -- the physics and the analog hardware;
* :mod:`.hardware` and its handler modules -- what the board's firmware does per message;
* :mod:`.emulator` -- :class:`BoardEmulator`, the :class:`memhw.peer.Peer` over all that.

Importing this package does not load the host stack (``memhw.board``, ``memhw.link``,
``memhw.session``).
"""

from .emulator import BoardEmulator
from .params import MockParams, make_params

__all__ = ["BoardEmulator", "MockParams", "make_params"]
