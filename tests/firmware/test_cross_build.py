"""The core fits a Cortex-M4F: cross-compiled for thumb (zig's C compiler), linked and sized.

The example port (``firmware/host/memhw_board_example.c``: a 128 x 64 board, a 16-entry
reply cache whose arena holds a full auto-ranged READ_MAP, the PROGRAM planner workspace,
one link and an 8 kB stack) must take at most 128 kB of flash and 64 kB of RAM, and use
nothing from outside but a handful of <string.h> functions and compiler helpers: no
double-precision arithmetic, no C library.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ziglang", reason="the cross compiler comes with the ziglang package (a test dependency)")
pytest.importorskip("elftools", reason="pyelftools sizes the image (a test dependency)")

from memhw.cfirmware.cross import cross_compile, image_size, undefined_symbols  # noqa: E402

FLASH_MAX = 128 * 1024
RAM_MAX = 64 * 1024
#: what the objects may take from outside the firmware: <string.h> (memhw_freestanding.c) and the
#: ARM EABI memcpy helpers of the compiler's runtime
ALLOWED = {"memcpy", "memmove", "memset", "strlen", "strchr", "__aeabi_memcpy", "__aeabi_memcpy4",
           "__aeabi_memcpy8", "__aeabi_memset", "__aeabi_memset4", "__aeabi_memclr", "__aeabi_memclr4",
           "__aeabi_memmove", "__aeabi_memmove4"}


def test_example_port_fits_a_cortex_m4(tmp_path) -> None:
    elf, objects = cross_compile(tmp_path)
    size = image_size(elf)
    print("CORTEX-M4", size, size.sections)
    assert size.flash <= FLASH_MAX, size
    assert size.ram <= RAM_MAX, size
    assert size.sections[".text"] > 10_000 and size.sections[".bss"] > 40_000  # the core and its buffers are in
    external = undefined_symbols(objects)
    assert external <= ALLOWED, sorted(external - ALLOWED)
    assert not any(s.startswith(("__aeabi_d", "__aeabi_f2d", "__aeabi_i2d")) for s in external)
